"""What a run config's ``[run] assets`` and selection name: importing the asset modules and
reading dbt's selection terms (``name``, ``+name``, ``name+``), each problem in the file's words.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from host._asset import AssetDefinition
from host._asset_config import is_config_class
from host._discovery import discover_plugins
from host._errors import ConfigError, DefinitionError, HostError
from host._events import describe_exception, safe_repr
from host._graph import Plan
from host._interrupts import SignalExit
from host._plugin_api import RESOURCES_GROUP
from host._resource import ConfigurableResource

__all__ = ["as_text", "check_parameters", "hint", "import_assets", "select"]


def as_text(items: Iterable[object], empty: str = "none") -> str:
    """A list for a message, as text: ``a, b, c`` (``empty`` when there is none)."""
    return ", ".join(str(item) for item in items) or empty


def hint(name: str, known: Sequence[str], what: str) -> str:
    """``did you mean 'x'? `` for the close names of ``known``, then what is known, as text."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    mean = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    return f"{mean}{what}: {as_text(known)}"


def import_assets(entry: str, base: Path) -> list[AssetDefinition]:
    """The assets one ``[run] assets`` entry names: every ``@asset`` at a module's top level
    (``"module"``), or one asset or a list of them (``"module:name"``).

    Raises:
        DefinitionError: the entry is malformed, its module cannot be imported (saying why;
            ``base`` is the config file's folder, searched first), or it names no asset.
    """
    module_name, _, attribute = entry.partition(":")
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module_name) or (
        attribute and not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attribute)
    ):
        raise DefinitionError(
            'not a module or "module:name" reference (e.g. "mypkg.assets" or "mypkg.assets:users")'
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise DefinitionError(
                f"no module named {exc.name!r} (searched {base} and "
                f"sys.path). Check the name, or add its directory to [run] pythonpath."
            ) from None
        raise DefinitionError(
            f"importing {module_name!r} failed: {describe_exception(exc)}"
        ) from exc
    except SignalExit:
        raise  # the host's own SIGTERM: the command ends as terminated
    except SystemExit as exc:
        raise DefinitionError(
            f"importing {module_name!r} failed: it called sys.exit({safe_repr(exc.code)}) "
            f"while being imported. An asset module must not exit when it is imported: put "
            f'script code under `if __name__ == "__main__":`.'
        ) from exc
    except Exception as exc:
        raise DefinitionError(
            f"importing {module_name!r} failed: {describe_exception(exc)}"
        ) from exc
    except BaseException as exc:  # KeyboardInterrupt or another BaseException: bad input
        raise DefinitionError(
            f"importing {module_name!r} failed: it raised {describe_exception(exc)} while "
            f"being imported (a BaseException, not an Exception). An asset module must "
            f"import cleanly: fix or remove what raises at its top level."
        ) from exc
    if not attribute:
        definitions = [v for v in vars(module).values() if isinstance(v, AssetDefinition)]
        if not definitions:
            raise DefinitionError(
                f"module {module_name!r} defines no @asset at module level; decorate the "
                f'functions with @host.asset, or name them as "module:name".'
            )
        return definitions
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            known = sorted(
                name for name, v in vars(module).items() if isinstance(v, AssetDefinition)
            )
            raise DefinitionError(
                f"module {module_name!r} has no attribute {attribute!r}; its assets: "
                f"{as_text(known)}."
            )
        obj = getattr(obj, part)
    if isinstance(obj, AssetDefinition):
        return [obj]
    if (
        isinstance(obj, list | tuple)
        and obj
        and all(isinstance(item, AssetDefinition) for item in obj)
    ):
        return list(obj)
    raise DefinitionError(
        f"{entry} is {type(obj).__name__} {getattr(obj, '__name__', '')!s}, not an asset; "
        f"decorate it with @host.asset (or name a list of assets)."
    )


def select(
    terms: Sequence[str] | None,
    label: str,
    asset_keys: Sequence[str],
    plan: Plan | None,
    problems: list[HostError],
) -> tuple[str, ...] | None:
    """The asset keys selection ``terms`` name: ``name`` (with its upstream assets, which always
    run), ``+name`` (the same, said explicitly) and ``name+`` (with its downstream assets too,
    from ``plan``). A problem in ``problems`` for each term naming no asset, worded with
    ``label`` (``[run] selection`` or ``--select``); ``None`` when there is no selection."""
    if terms is None:
        return None
    if not terms:
        example = f" (e.g. {asset_keys[0]!r})" if asset_keys else ""
        problems.append(
            ConfigError(
                f"{label} selects no asset; name one or more{example}, or leave it out to "
                f"run every asset."
            )
        )
        return None
    downstream = _descendants(plan) if plan is not None else {}
    keys: dict[str, None] = {}
    for index, term in enumerate(terms):
        name = term.removeprefix("+").removesuffix("+")
        where = f"{label}[{index}] {term!r}"
        if name not in asset_keys:
            what = "names no asset" if not name else f"no asset is called {name!r}"
            problems.append(
                DefinitionError(f"{where}: {what}; {hint(name, asset_keys, 'assets')}.")
            )
            continue
        keys[name] = None
        if term.endswith("+"):
            keys.update(dict.fromkeys(downstream.get(name, ())))
    return tuple(keys)


def _descendants(plan: Plan) -> dict[str, list[str]]:
    """Asset key -> every asset downstream of it, in the plan's order."""
    direct = plan.downstream()
    result: dict[str, list[str]] = {}
    for key in reversed(plan.order):
        below: dict[str, None] = {}
        for child in direct[key]:
            below[child] = None
            below.update(dict.fromkeys(result[child]))
        result[key] = [k for k in plan.order if k in below]
    return result


def check_parameters(
    assets: Sequence[AssetDefinition],
    resources: Mapping[str, ConfigurableResource],
    resource_keys: Sequence[str],
    all_built: bool,
    problems: list[HostError],
) -> bool:
    """Every asset parameter names an asset, a ``[resources.KEY]`` table (of
    ``resource_keys``; ``resources`` are those that could be built, all of them if
    ``all_built``), ``context``, a resource the asset binds itself or its config class (or has a
    default); a problem in ``problems`` for each that does not. Whether all did."""
    asset_keys = [a.key for a in assets]
    built = [type(resource) for resource in resources.values()]
    ok = True
    for definition in assets:
        try:
            hints = definition.type_hints
        except Exception:  # the plan reports hints that cannot be read
            continue
        for parameter in definition.parameters:
            name = parameter.name
            where = f"asset {definition.key!r}, parameter {name!r}"
            annotation = hints.get(name)
            if isinstance(annotation, type) and issubclass(annotation, ConfigurableResource):
                if name in resource_keys or not all_built:
                    continue
                if any(issubclass(kind, annotation) for kind in built):
                    continue
                ok = False
                problems.append(
                    DefinitionError(
                        f"{where}: needs a {annotation.__name__} resource, and no "
                        f"[resources.KEY] table gives one. Add a [resources.{name}] table "
                        f"with type = {_type_names(annotation)}."
                    )
                )
                continue
            if name in asset_keys or name in resource_keys or name == "context":
                continue
            if name in definition.resource_defs or is_config_class(annotation):
                continue  # bound by the asset itself, or its config ([assets.NAME.config])
            if parameter.default is not inspect.Parameter.empty:
                continue
            ok = False
            close = difflib.get_close_matches(name, [*asset_keys, *resource_keys], n=1)
            mean = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                DefinitionError(
                    f"{where}: no asset, [resources.{name}] table or 'context' is called "
                    f"{name!r}; {mean}assets: {as_text(asset_keys)}; resources: "
                    f"{as_text(resource_keys)}. Add a [resources.{name}] table with its "
                    f"type, add the asset to [run] assets, or give the parameter a default."
                )
            )
    return ok


def _type_names(cls: type) -> str:
    """The ``type = ...`` values that give ``cls`` (installed entry points naming it), as text."""
    value = f"{cls.__module__}:{cls.__qualname__}"
    names = sorted({i.name for i in discover_plugins(RESOURCES_GROUP) if i.value == value})
    if names:
        return " or ".join(f'"{name}"' for name in names)
    return "the resource type that provides it (`host resources` lists the installed types)"

"""Resources configured at launch: ``configure_at_launch()`` and ``.partial()``.

A partial resource is an instance of its class that holds only the configuration given so far
(built without validation, so that required fields may be missing). Being an instance of its
class, it can be bound to a key, held in another resource's field (a dependency), and matched
by an asset parameter's annotation, like any resource. Before a run plans anything, each one is
replaced by a fully configured resource built from what it holds and the launch-time config of
its key (:func:`with_launch_config`); a required field still missing then is a
:class:`host.ConfigError` naming the key and field. A partial resource is never brought up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from host._errors import ConfigError

if TYPE_CHECKING:
    from host._resource import ConfigurableResource

__all__ = ["is_partial", "make_partial", "missing_fields", "with_launch_config"]

R = TypeVar("R", bound="ConfigurableResource")

#: Where a partial resource keeps the values given to ``configure_at_launch``/``partial``.
_GIVEN = "_host_partial"


def by_field_name(cls: type[ConfigurableResource], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with each key that is a field's alias (``Field(alias=...)``) given as that
    field's name; other keys as they are."""
    aliases = {
        info.alias: name
        for name, info in cls.model_fields.items()
        if info.alias is not None and info.alias != name
    }
    if not aliases:
        return dict(values)
    return {aliases.get(key, key): value for key, value in values.items()}


def make_partial(cls: type[R], values: Mapping[str, Any]) -> R:
    """An instance of ``cls`` holding ``values``, to be completed at launch.

    Unknown field names are refused now (they could never validate); the others are checked
    when the launch-time config is applied.

    Raises:
        ConfigError: a name in ``values`` is not a field of ``cls`` (nor a field's alias).
    """
    values = by_field_name(cls, values)
    unknown = sorted(set(values) - set(cls.model_fields))
    if unknown:
        raise ConfigError(
            f"{cls.__name__}.configure_at_launch()/partial() got {unknown}, which "
            f"{'is not a field' if len(unknown) == 1 else 'are not fields'} of "
            f"{cls.__name__} (fields: {sorted(cls.model_fields) or 'none'}).",
            field=unknown[0],
        )
    partial = cls.model_construct(**values)
    private = partial.__pydantic_private__
    assert private is not None  # a ConfigurableResource always has private attributes
    private[_GIVEN] = dict(values)
    return partial


def is_partial(value: Any) -> bool:
    """Whether ``value`` is a partial resource still to be configured at launch."""
    private = getattr(value, "__pydantic_private__", None)
    return isinstance(private, dict) and _GIVEN in private


def given_values(resource: ConfigurableResource) -> dict[str, Any]:
    """The configuration a resource holds: what a partial was given, or every field's value
    (``EnvVar`` values still unread) of a configured one."""
    private = resource.__pydantic_private__ or {}
    if _GIVEN in private:
        return dict(private[_GIVEN])
    env = private.get("_host_env") or {}
    values = {name: resource.__dict__[name] for name in resource.__pydantic_fields_set__}
    values.update(env)
    return values


def missing_fields(cls: type[ConfigurableResource], values: Mapping[str, Any]) -> list[str]:
    """The required fields of ``cls`` that ``values`` does not give."""
    fields = cls.model_fields
    return [name for name, info in fields.items() if info.is_required() and name not in values]


def with_launch_config(
    key: str,
    resource: ConfigurableResource,
    launch: Mapping[str, Any] | None,
    dependencies: Mapping[str, Any],
) -> ConfigurableResource:
    """``resource`` configured with its key's launch-time config, validated.

    The launch values replace those the resource holds, field by field (for a configured
    resource too: its values are the defaults launch config overrides, as in Dagster);
    ``dependencies`` (field -> resolved dependency) replace the dependency fields.

    Raises:
        ConfigError: a required field is given neither when the resource was declared nor at
            launch, or a value does not validate; naming the key, class and field.
    """
    cls = type(resource)
    launch = by_field_name(cls, launch or {})
    unknown = sorted(set(launch) - set(cls.model_fields))
    if unknown:
        raise ConfigError(
            f"run_config for resource {key!r} ({cls.__name__}) gives {unknown}, not "
            f"{'a field' if len(unknown) == 1 else 'fields'} of {cls.__name__} (fields: "
            f"{sorted(cls.model_fields) or 'none'}).",
            resource_key=key,
            field=unknown[0],
        )
    values = {**given_values(resource), **dependencies, **_enum_members(cls, launch)}
    missing = missing_fields(cls, values)
    if missing:
        example = ", ".join(f"{name!r}: ..." for name in missing)
        raise ConfigError(
            f"resource {key!r} ({cls.__name__}) is configured at launch and field "
            f"{missing[0]!r} was given neither when it was declared nor at launch "
            f"(missing: {missing}). Give it in the run's config: run_config={{'resources': "
            f"{{{key!r}: {{'config': {{{example}}}}}}}}}; nothing was brought up.",
            resource_key=key,
            field=missing[0],
        )
    from host._resource_errors import config_error_from_validation

    problem: ConfigError | None = None
    try:
        return cls(**values)
    except ValidationError as exc:
        problem = config_error_from_validation(key, cls, exc, values=values)
    raise problem


def _enum_members(cls: type[ConfigurableResource], launch: Mapping[str, Any]) -> dict[str, Any]:
    """``launch`` with an enum field given by a member's name (Dagster's run config names
    enum members) as that member; a value that is a member's value stays as it is."""
    import enum

    result = dict(launch)
    for name, value in launch.items():
        annotation = cls.model_fields[name].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, enum.Enum)):
            continue
        names = annotation.__members__
        if isinstance(value, str) and value in names and value not in {m.value for m in annotation}:
            result[name] = annotation[value]
    return result

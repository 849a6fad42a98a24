"""Secret values in configuration values, and masking them in what the host reports.

A secret is the value of a ``pydantic.SecretStr`` (or ``SecretBytes``) anywhere in a resource's
configuration (a field, or inside a nested model, mapping, list, tuple or set in a field, to any
depth), or a value read from the environment through ``EnvVar`` (``{ env = "NAME" }`` in a run
config), wherever it is. The host never formats configuration values into its own messages; this
module is the second line: error reports (:class:`host.ErrorInfo` in events, failures and
``RunFailure``) and everything ``host`` prints have every known secret replaced by
``**********``, in every form a secret takes in text (see :func:`mask`), so that a resource or an
asset whose own exception message happens to contain one does not leak it either. Collecting
them from a run's resources is :mod:`host._secret_values`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from pydantic import SecretBytes, SecretStr

from host._envvar import EnvVar
from host._events import ErrorInfo
from host._values import MASK, walk_values

__all__ = [
    "MIN_SECRET_LENGTH",
    "MIN_TRUNCATED_LENGTH",
    "mask",
    "mask_error",
    "mask_event",
    "secret_forms",
    "secrets_in",
]

#: Secret values shorter than this are not masked (they would mask ordinary text).
MIN_SECRET_LENGTH = 4

#: A truncated part of a secret (a prefix before ``...``, a suffix after it) is masked when it
#: is at least this long.
MIN_TRUNCATED_LENGTH = 8

E = TypeVar("E")


def _bytes_texts(value: bytes) -> list[str]:
    """How a secret ``bytes`` value shows in text: decoded, and as in its ``repr``."""
    texts = [repr(value)[2:-1]]
    try:
        texts.append(value.decode("utf-8"))
    except UnicodeDecodeError:
        texts.append(value.decode("latin-1"))
    return texts


def secrets_in(value: Any) -> list[str]:
    """The secret values inside ``value``, to any depth (not those of resources it holds).

    ``SecretStr``/``SecretBytes`` values, and the current value in this process of each
    ``EnvVar`` (a variable that is not set contributes nothing). Mappings, lists, tuples, sets,
    pydantic models and dataclass instances are walked iteratively.
    """
    found: list[str] = []
    for _, item in walk_values(value):
        if isinstance(item, EnvVar):
            current = os.environ.get(item.name)
            if current is not None:
                found.append(current)
        elif isinstance(item, SecretStr):
            found.append(item.get_secret_value())
        elif isinstance(item, SecretBytes):
            found.extend(_bytes_texts(item.get_secret_value()))
    return found


def secret_forms(secret: str) -> list[str]:
    """Every form ``secret`` takes in text: raw, ``repr``/``ascii`` escaped (either quote, and
    a repr of a repr), and ``json.dumps`` escaped (ASCII or not); distinct, longest first."""
    forms = {secret}
    for quoted in (repr, ascii):
        single = quoted(secret + '"')[1:-2]  # forced '-quotes: ' escaped, " not
        forms.add(single)
        forms.add(quoted(single + '"')[1:-2])  # the repr of a text holding that repr
        if '"' not in secret:
            forms.add(quoted(secret + "'")[1:-2])  # "-quotes: ' not escaped
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return sorted(forms, key=len, reverse=True)


#: What a truncated text is cut at: an ellipsis, or a line break (or the text's start/end).
_CUTS = ("...", "\u2026", "\n", "\r")


def _common_prefix(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` share at their start."""
    size = min(len(a), len(b))
    index = 0
    while index < size and a[index] == b[index]:
        index += 1
    return index


@dataclasses.dataclass(frozen=True)
class _Masker:
    """Masking for one set of secrets: precomputed once, used for every text."""

    whole: re.Pattern[str] | None
    #: (first 8 characters, the form) of each form long enough to be cut.
    prefixes: tuple[tuple[str, str], ...]
    #: (last 8 characters, the form) likewise.
    suffixes: tuple[tuple[str, str], ...]

    def __call__(self, text: str) -> str:
        if self.whole is not None:
            text = self.whole.sub(MASK, text)
        if self.prefixes:
            text = self._cut_parts(text)
        return text

    def _cut_parts(self, text: str) -> str:
        """Mask the parts of secrets at least 8 characters long that a truncation left:
        a prefix followed by ``...``/``…``/a line end, a suffix after ``...``/``…``/a line
        start."""
        n, least = len(text), MIN_TRUNCATED_LENGTH
        spans: list[tuple[int, int]] = []
        for head, form in self.prefixes:
            start = text.find(head)
            while start != -1:
                same = _common_prefix(text[start : start + len(form)], form)
                for end in range(start + same, start + least - 1, -1):
                    if end == n or text.startswith(_CUTS, end):
                        spans.append((start, end))
                        break
                start = text.find(head, start + 1)
        for tail, form in self.suffixes:
            found = text.find(tail)
            while found != -1:
                end = found + least
                window = text[max(0, end - len(form)) : end]
                same = _common_prefix(window[::-1], form[::-1])
                for begin in range(end - same, end - least + 1):
                    if begin == 0 or text.endswith(_CUTS, 0, begin):
                        spans.append((begin, end))
                        break
                found = text.find(tail, found + 1)
        if not spans:
            return text
        spans.sort()
        merged: list[list[int]] = []
        for begin, end in spans:
            if merged and begin <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([begin, end])
        pieces, position = [], 0
        for begin, end in merged:
            pieces += [text[position:begin], MASK]
            position = end
        pieces.append(text[position:])
        return "".join(pieces)


@functools.lru_cache(maxsize=128)
def _masker(secrets: frozenset[str]) -> _Masker:
    forms: set[str] = set()
    for secret in secrets:
        if len(secret) >= MIN_SECRET_LENGTH:
            forms.update(secret_forms(secret))
    ordered = sorted(forms, key=len, reverse=True)
    whole = re.compile("|".join(map(re.escape, ordered))) if ordered else None
    long = [form for form in ordered if len(form) > MIN_TRUNCATED_LENGTH]
    n = MIN_TRUNCATED_LENGTH
    prefixes = tuple((form[:n], form) for form in long)
    suffixes = tuple((form[-n:], form) for form in long)
    return _Masker(whole, prefixes, suffixes)


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of each secret replaced by ``**********``.

    Masked, for each secret at least :data:`MIN_SECRET_LENGTH` characters long: the raw
    value; its escaped forms (``repr`` and ``ascii`` with either quote, a ``repr`` of a
    ``repr``, ``json.dumps`` with and without ``ensure_ascii``); and, for a form longer than
    :data:`MIN_TRUNCATED_LENGTH`, any prefix of it at least that long followed by ``...``,
    ``…`` or the end of a line (a truncated value, as pydantic's ``input_value=`` or a summary
    shows one) and any suffix of it at least that long after ``...``, ``…`` or the start of a
    line. The work for one set of secrets is done once and cached.
    """
    if not text:
        return text
    chosen = frozenset(secrets)
    if not chosen:
        return text
    return _masker(chosen)(text)


def mask_error(info: ErrorInfo, secrets: Collection[str]) -> ErrorInfo:
    """``info`` with the secret values masked in its message and traceback."""
    if not secrets:
        return info
    message, text = mask(info.message, secrets), mask(info.traceback, secrets)
    if message == info.message and text == info.traceback:
        return info
    return dataclasses.replace(info, message=message, traceback=text)


def mask_event(event: E, secrets: Collection[str]) -> E:
    """``event`` with the secret values masked in its error, if it has one."""
    error = getattr(event, "error", None)
    if error is None or not secrets:
        return event
    masked = mask_error(error, secrets)
    if masked is error:
        return event
    return dataclasses.replace(event, error=masked)  # type: ignore[type-var]

"""Read plain TOML data into frozen dataclasses, and name every wrong key as pydantic would.

The call's rules are read by every command that judges a mail, `mailbot check`
among them, so they are typed without pydantic (about 60 ms of a command's
start). A section is a frozen dataclass; its fields are typed ``str``,
``int``, ``float``, ``bool``, ``list[...]``, another section, ``X | None``,
or ``Annotated[T, convert]`` where ``convert`` reads the raw value first (a
size such as "50MB"). A section may check and normalise its own fields after
they are typed: ``field_checks`` maps a field's name to a function that
returns the value to keep or raises ValueError with what is wrong. Every
wrong key is collected, with its place, as pydantic reports it: missing,
unknown key, or a message.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, Union


@dataclasses.dataclass(frozen=True)
class Invalid:
    """One wrong key: where it is (section, key, list index ...), its kind and what is wrong."""

    loc: tuple[str | int, ...]
    kind: str  # "missing", "extra_forbidden" or "value"
    message: str


Checks = Mapping[str, Callable[[Any], Any]]


class Section:
    """A base for the frozen dataclasses a schema is made of."""

    field_checks: ClassVar[Checks] = {}


S = TypeVar("S", bound=Section)


def validate(cls: type[S], data: Any) -> S | list[Invalid]:
    """``data`` (as tomllib gives it) as an instance of ``cls``, or every wrong key in it."""
    errors: list[Invalid] = []
    value = _section(cls, data, (), errors)
    return errors if errors else typing.cast(S, value)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The fields' types: as written when the module has them as objects, else evaluated."""
    if cls not in _HINTS:
        fields = dataclasses.fields(cls)
        if any(isinstance(field.type, str) for field in fields):
            _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
        else:
            _HINTS[cls] = {field.name: field.type for field in fields}
    return _HINTS[cls]


def _section(cls: type, data: Any, loc: tuple[str | int, ...], errors: list[Invalid]) -> Any:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        message = f"Input should be a valid dictionary or instance of {cls.__name__}"
        errors.append(Invalid(loc, "value", message))
        return None
    hints = _hints(cls)
    found: dict[str, Any] = {}
    before = len(errors)
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                errors.append(Invalid((*loc, field.name), "missing", "Field required"))
            continue
        found[field.name] = _field(
            cls, field.name, hints[field.name], data[field.name], loc, errors
        )
    known = {field.name for field in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            errors.append(Invalid((*loc, key), "extra_forbidden", "Extra inputs are not permitted"))
    return cls(**found) if len(errors) == before else None


def _field(
    cls: type, name: str, hint: Any, raw: Any, loc: tuple[str | int, ...], errors: list[Invalid]
) -> Any:
    before = len(errors)
    value = _value(hint, raw, (*loc, name), errors)
    check = getattr(cls, "field_checks", {}).get(name)
    if check is None or len(errors) != before:
        return value
    try:
        return check(value)
    except ValueError as exc:
        errors.append(Invalid((*loc, name), "value", str(exc)))
        return None


def _value(hint: Any, raw: Any, loc: tuple[str | int, ...], errors: list[Invalid]) -> Any:
    """``raw`` typed as ``hint``, or None with the reason added to ``errors``."""
    if hint in _SCALARS:
        return _scalar(hint, raw, loc, errors)
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *extras = typing.get_args(hint)
        for convert in extras:
            try:
                raw = convert(raw)
            except ValueError as exc:
                errors.append(Invalid(loc, "value", str(exc)))
                return None
        return _value(base, raw, loc, errors)
    if origin in (Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return None if raw is None else _value(options[0], raw, loc, errors)
    if origin is list:
        if not isinstance(raw, list | tuple):
            errors.append(Invalid(loc, "value", "Input should be a valid list"))
            return None
        (item,) = typing.get_args(hint)
        if item is str and all(isinstance(each, str) for each in raw):
            return list(raw)  # the lists of names, read in one step
        return [_value(item, each, (*loc, index), errors) for index, each in enumerate(raw)]
    return _section(hint, raw, loc, errors)


def _scalar(hint: type, raw: Any, loc: tuple[str | int, ...], errors: list[Invalid]) -> Any:
    try:
        return _SCALARS[hint](raw)
    except (TypeError, ValueError, OverflowError) as exc:
        # A converter's ValueError says why a value of the right kind does not fit.
        detail = exc.args[0] if isinstance(exc, ValueError) and exc.args else ""
        errors.append(Invalid(loc, "value", f"Input should be a valid {_NAMES[hint]}{detail}"))
        return None


def _as_str(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


def _as_int(raw: Any) -> int:
    if isinstance(raw, int):  # True and False too, as pydantic reads them
        return int(raw)
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(", got a number with a fractional part")
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            raise ValueError(", unable to parse string as an integer") from None
    raise TypeError(raw)


def _as_float(raw: Any) -> float:
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(", unable to parse string as a number") from None
    raise TypeError(raw)


_TRUTH = {"true": True, "yes": True, "on": True, "1": True}
_TRUTH |= {"false": False, "no": False, "off": False, "0": False}


def _as_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in _TRUTH:
        return _TRUTH[raw.strip().lower()]
    raise TypeError(raw)


_SCALARS: dict[type, Callable[[Any], Any]] = {
    str: _as_str,
    int: _as_int,
    float: _as_float,
    bool: _as_bool,
}
_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean"}

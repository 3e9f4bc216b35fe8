"""Settings dataclasses carry their own option text and limits; the command line and the
preflight both read them from there, so each default and each range exists once.

A field becomes a command-line option when its metadata comes from ``option(...)``:
``--<name with dashes>`` (or ``flag``), its type from the field's annotation, its default
from the field, and ``minimum``/``maximum``/``choices`` checked by argparse and, for
callers of the Python API, by ``range_problems``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_KEY = "timeseg_option"
METAVARS = {int: "N", float: "X", Path: "PATH", str: "TEXT"}


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    help: str
    flag: str | None = None
    choices: Sequence[str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    words: str | None = None  # how messages name the value, e.g. "the tile size"


def option(default: Any = dataclasses.MISSING, help: str = "", **spec: Any) -> Any:
    """A dataclass field that is also a command-line option (see the module docstring)."""
    metadata = {_KEY: OptionSpec(help, **spec)}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _options(cls: type) -> list[tuple[dataclasses.Field, OptionSpec, type]]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_KEY)
        if spec is not None:
            base = hints[f.name]
            arguments = [a for a in typing.get_args(base) if a is not type(None)]
            found.append((f, spec, arguments[0] if arguments else base))
    return found


def _flag(f: dataclasses.Field, spec: OptionSpec) -> str:
    return spec.flag or "--" + f.name.replace("_", "-")


def _words(f: dataclasses.Field, spec: OptionSpec) -> str:
    return spec.words or _flag(f, spec)


def _range_text(spec: OptionSpec) -> str:
    if spec.minimum is not None and spec.maximum is not None:
        return f"between {spec.minimum:g} and {spec.maximum:g}"
    if spec.minimum is not None:
        return f"at least {spec.minimum:g}"
    return f"at most {spec.maximum:g}"


def _value_problem(value: Any, f: dataclasses.Field, spec: OptionSpec, kind: type) -> str | None:
    if value is None:
        return None
    if spec.choices is not None and value not in spec.choices:
        return f"{_words(f, spec)} must be one of {', '.join(map(str, spec.choices))}, not {value!r}"
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            return f"{_words(f, spec)} must be a {'whole ' if kind is int else ''}number, not {value!r}"
        too_low = spec.minimum is not None and value < spec.minimum
        too_high = spec.maximum is not None and value > spec.maximum
        if too_low or too_high or value != value:  # NaN fails every comparison
            return f"{_words(f, spec)} must be {_range_text(spec)}, not {value:g}"
    return None


def range_problems(settings: Any) -> list[str]:
    """Values of ``settings`` (a dataclass instance) outside their options' choices or limits."""
    problems = []
    for f, spec, kind in _options(type(settings)):
        problem = _value_problem(getattr(settings, f.name), f, spec, kind)
        if problem:
            problems.append(problem)
    return problems


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """One argparse option per ``option`` field of ``cls``, checked as it is parsed."""
    for f, spec, kind in _options(cls):
        flag = _flag(f, spec)
        default = None if f.default is dataclasses.MISSING else f.default
        text = spec.help
        if default not in (None, False) and spec.choices is None and kind is not Path:
            text += f" (default {default:g})" if kind is float else f" (default {default})"
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", help=text)
            continue
        parser.add_argument(flag, dest=f.name, type=_parser(f, spec, kind), default=default,
                            choices=spec.choices, required=spec.required, help=text,
                            metavar=None if spec.choices else METAVARS.get(kind, "VALUE"))


def _parser(f: dataclasses.Field, spec: OptionSpec, kind: type):
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {'whole ' if kind is int else ''}number") from None
        problem = _value_problem(value, f, dataclasses.replace(spec, words="it"), kind)
        if problem:
            raise argparse.ArgumentTypeError(problem.replace("it must", "must", 1))
        return value

    return parse if kind in (int, float) else kind


def option_help(cls: type, name: str) -> str:
    """The help text of ``cls``'s option field ``name`` (for the dock's tooltips and Processing's help)."""
    return next(spec.help for f, spec, _ in _options(cls) if f.name == name)


def values_of(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The ``option`` fields of ``cls`` as parsed into ``args``, ready for ``cls(**...)``."""
    return {f.name: getattr(args, f.name) for f, _, _ in _options(cls)}

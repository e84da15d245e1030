"""Options as typed groups whose fields say, once, their default, their check and their help text.

    @dataclass(frozen=True)
    class ScheduleOptions(Options):
        epochs: int = option(10, "training epochs", at_least(1), recipe=True)

A group checks every value when it is made and raises `ConfigError` naming the field. Everything else about
an option is read from its field (`option_fields`): the command line's flags and help (`visionzoo.cli.train`),
the fields a recipe may give (`visionzoo.recipes`) and the YAML/TOML files of a run (`option_files`).

Help texts and error messages name options as `{lr_base}` (`errors.name_options`): a Python caller reads
the field name, and the command line writes the flag there instead (`--lr-base`). This module imports no
torch.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from .errors import ConfigError, OptionError

_Group = TypeVar("_Group", bound="Options")


@dataclass(frozen=True)
class Rule:
    """What a good value of an option is: `test(value)`, and `text` saying it (for the error message).
    `choices` lists the values a choice rule allows, for the command line."""

    text: str
    test: Callable[[Any], bool]
    choices: tuple[str, ...] = ()


def at_least(minimum: int) -> Rule:
    return Rule(f"at least {minimum}", lambda value: value >= minimum)


def one_of(*choices: str) -> Rule:
    return Rule(" or ".join(choices), lambda value: value in choices, choices)


POSITIVE = Rule("positive", lambda value: value > 0)
NON_NEGATIVE = Rule("0 or more", lambda value: value >= 0)
PROBABILITY = Rule("a probability in [0, 1]", lambda value: 0 <= value <= 1)


def option(default: Any, help: str, rule: Rule | None = None, *, recipe: bool = False) -> Any:
    """A field of an option group: its default, its help text, the rule its values must meet (None values
    are not checked: None means "not set") and whether a training recipe may give it."""
    return field(default=default, metadata={"help": help, "rule": rule, "recipe": recipe})


@dataclass(frozen=True)
class OptionField:
    """One option as the command line, the recipes and the files see it."""

    name: str
    group: str  # the attribute of the config that holds its group ('' for a field of the config itself)
    kind: type  # bool, int, float or str; a pair holds two floats
    optional: bool  # None is a value (not set, or off)
    pair: bool
    default: Any
    help: str
    rule: Rule | None
    recipe: bool


def _describe(name: str, hint: Any, default: Any, metadata: Mapping, group: str) -> OptionField:
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    optional = type(None) in args
    base = next(arg for arg in args if arg is not type(None))
    pair = typing.get_origin(base) is tuple
    kind = typing.get_args(base)[0] if pair else base
    return OptionField(name, group, kind, optional, pair, default, metadata.get("help", ""),
                       metadata.get("rule"), metadata.get("recipe", False))


@cache
def option_fields(cls: type) -> tuple[OptionField, ...]:
    """The options of a group, or of a config made of groups (its own fields, then each group's), in
    declaration order."""
    hints = typing.get_type_hints(cls)
    found: list[OptionField] = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if isinstance(hint, type) and issubclass(hint, Options):
            found += [dataclasses.replace(inner, group=f.name) for inner in option_fields(hint)]
        else:
            found.append(_describe(f.name, hint, f.default, f.metadata, ""))
    return tuple(found)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# what a value of each option kind may be (from a file: an int where a float is expected), and its name
_KINDS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda value: isinstance(value, bool), "true or false"),
    int: (lambda value: isinstance(value, int) and not isinstance(value, bool), "a whole number"),
    float: (_is_number, "a number"),
    str: (lambda value: isinstance(value, str), "a string"),
}


@dataclass(frozen=True)
class Options:
    """Base of an option group: the fields' rules are checked when a group is made; pairs given as lists
    (from a file) become tuples of floats."""

    def __post_init__(self):
        for described in option_fields(type(self)):
            value = getattr(self, described.name)
            if value is None:
                continue
            if described.pair:
                if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(map(_is_number, value)):
                    raise ConfigError(f"{{{described.name}}} takes two numbers, got {value!r}")
                object.__setattr__(self, described.name, (float(value[0]), float(value[1])))
            elif not _KINDS[described.kind][0](value):
                raise ConfigError(f"{{{described.name}}} takes {_KINDS[described.kind][1]}, got {value!r}")
            rule = described.rule
            if rule is not None and not rule.test(getattr(self, described.name)):
                raise ConfigError(f"{{{described.name}}} must be {rule.text}")
        self.check()

    def check(self) -> None:
        """Checks between fields; a group that has some overrides this and raises ConfigError."""

    @classmethod
    def from_options(cls: type[_Group], values: Mapping[str, Any]) -> _Group:
        """The group from a mapping of option names, such as a recipe's options: keys that are not its fields
        are ignored, and None keeps the default of a field that cannot be None."""
        known = {f.name: f for f in option_fields(cls)}
        return cls(**{key: value for key, value in values.items()
                      if key in known and (value is not None or known[key].optional)})

    @classmethod
    def of(cls: type[_Group], options: _Group | Mapping[str, Any] | None) -> _Group:
        """`options` as this group: the group itself, one made `from_options` a mapping, or the defaults."""
        if isinstance(options, cls):
            return options
        return cls() if options is None else cls.from_options(options)


class OptionSet:
    """Base of a config made of option groups (fields whose type is an `Options` group) and plain options,
    made and read by the flat option names, as the command line and the files have them.

    `Config(lr=0.1, model="x")` puts each option in its group; a whole group may be given by its field name
    (`Config(optim=OptimOptions(...))`), and flat names then change it.
    """

    def __init__(self, **options: Any):
        described = {f.name: f for f in option_fields(type(self))}
        hints = typing.get_type_hints(type(self))
        unknown = sorted(set(options) - set(described) - set(hints))
        if unknown:
            raise OptionError(f"{type(self).__name__} has no option {', '.join(map(repr, unknown))}")
        changes: dict[str, dict] = {}
        for name, value in options.items():
            if name in described:
                changes.setdefault(described[name].group, {})[name] = value
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Options):
                group = options.get(f.name) or hint()
                mine = changes.get(f.name)
                object.__setattr__(self, f.name, dataclasses.replace(group, **mine) if mine else group)
            else:
                object.__setattr__(self, f.name, changes.get("", {}).get(f.name, f.default))

    def to_dict(self) -> dict:
        """Every option by its flat name, as plain YAML/JSON values (pairs become lists)."""
        values = {}
        for described in option_fields(type(self)):
            value = getattr(getattr(self, described.group) if described.group else self, described.name)
            values[described.name] = list(value) if isinstance(value, tuple) else value
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "config"):
        """A config from flat option names (missing ones take their defaults); ConfigError names an unknown
        key, with `where` the values came from."""
        known = {f.name for f in option_fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown option {', '.join(map(repr, unknown))}")
        return cls(**values)

    def replace(self, **changes: Any):
        """A copy with the options `changes` (flat names) changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

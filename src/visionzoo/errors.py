"""The errors visionzoo raises for problems its caller can fix.

Each message is one line that names the problem and the fix. The command line prints any `VisionzooError`
as that line (exit status 2); anything else is a bug and keeps its traceback. The classes also derive from
the built-in type a caller would expect (`ValueError`, `TypeError`, `RuntimeError`), so `except ValueError`
keeps working.

A message names the arguments and options it mentions as `{name}` (the Python name: `{checkpoint_path}`,
`{lr}`). `str(error)` shows those names, as a Python caller writes them; the command line shows its flags
instead (`error.naming(flag)`, with the one field-to-flag mapping in `visionzoo.cli.options`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Where the README lists what visionzoo refuses and why; messages point there where the reason is long.
REFUSALS = "README.md#what-visionzoo-refuses-and-why"

# `{name}`, or `{name=True}` / `{name=False}` for a switch set one way
_OPTION = re.compile(r"\{([a-z_][a-z0-9_]*(?:=True|=False)?)\}")


def name_options(text: str, name: Callable[[str], str] = str) -> str:
    """`text` with each option it names as `{field}` (or `{field=False}`) written `name("field")` (by default
    as it is written): library messages and help texts name options this way, and the command line writes
    them as flags."""
    return _OPTION.sub(lambda match: name(match[1]), text)


class VisionzooError(Exception):
    """Base of every error visionzoo raises on purpose. The message may name arguments as `{name}`:
    `str(error)` shows the names, `error.naming(name)` another name for each (the command line's flags)."""

    def __init__(self, message: str = ""):
        super().__init__(name_options(message))
        self.template = message

    def naming(self, name: Callable[[str], str]) -> str:
        """The message with each argument it names written `name(argument)`."""
        return name_options(self.template, name)

    def __reduce__(self):
        # sent between processes (the ranks of a run agree on an error) with its names still marked
        return type(self), (self.template,)


class UserError(VisionzooError, ValueError):
    """A value given by the caller (a name, a size, a path, an option value) that cannot be used."""


class ConfigError(UserError):
    """An option value that cannot be used; the message names options as `{field}` (the config's field
    names)."""


class UnknownModelError(UserError):
    """A model or tag name that is not registered; the message suggests close matches."""


class OptionError(VisionzooError, TypeError):
    """An option (keyword argument) that the architecture or function does not have."""


class InputSizeError(UserError):
    """An input size the model cannot take; the message says which sizes it can."""


class DataError(UserError):
    """A data path or label the evaluation cannot use; the message says what to change."""


class CheckpointError(VisionzooError, RuntimeError):
    """A checkpoint that cannot be found, read, or fitted to the model."""


class OutputError(VisionzooError, OSError):
    """A file or folder that cannot be written (no space, no permission, in use by another run)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what was kept and how to go on (one line, exit status 130 from the command line).
    `shown` is False on the processes of a torchrun group that leave the saying to the first."""

    def __init__(self, message: str = "", shown: bool = True):
        super().__init__(name_options(message))
        self.template, self.shown = message, shown

    naming = VisionzooError.naming


class MissingDependencyError(VisionzooError, ImportError):
    """An optional dependency that a feature needs is not installed; the message says how to install it."""


class TrainingError(VisionzooError, RuntimeError):
    """A training run that cannot go on: its loss or weights stopped being finite, an epoch had no image it
    could read. The message says what was kept and what to change."""

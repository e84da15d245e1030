"""The errors visionzoo raises for problems its caller can fix.

Each message is one line that names the problem and the fix. The command line prints any `VisionzooError`
as that line (exit status 2); anything else is a bug and keeps its traceback. The classes also derive from
the built-in type a caller would expect (`ValueError`, `TypeError`, `RuntimeError`), so `except ValueError`
keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_OPTION = re.compile(r"\{(\w+)\}")


def name_options(text: str, name: Callable[[str], str] = str) -> str:
    """`text` with each option it names as `{field}` written `name(field)` (by default the field name):
    library messages and help texts name options this way, and the command line writes them as flags."""
    return _OPTION.sub(lambda match: name(match[1]), text)


class VisionzooError(Exception):
    """Base of every error visionzoo raises on purpose."""


class UserError(VisionzooError, ValueError):
    """A value given by the caller (a name, a size, a path, an option value) that cannot be used."""


class ConfigError(UserError):
    """An option value that cannot be used. The message names options as `{field}` (the config's field
    name): `str(error)` shows the field names, and `error.naming(name)` another name for each (the command
    line writes its flags)."""

    def __init__(self, message: str):
        super().__init__(name_options(message))
        self.template = message

    def naming(self, name: Callable[[str], str]) -> str:
        return name_options(self.template, name)


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

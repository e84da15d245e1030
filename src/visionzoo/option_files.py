"""Option files: the one writer of the YAML and TOML that options are kept in (a run's args.yaml, a recipe
shown with `visionzoo recipes --show`, a config file), and their reader.

The writer puts one `key: value` per line, in flow style, so that a comment can follow any value. Values
are None, bools, ints, floats, strings and lists of them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _printable(char: str) -> bool:
    # the characters YAML lets stand in a double-quoted string as they are (besides tab)
    code = ord(char)
    return (0x20 <= code <= 0x7E or code == 0x85 or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or code >= 0x10000)


def _quoted(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif _printable(char):
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def yaml_value(value) -> str:
    """`value` as a YAML flow value that reads back as the same Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        text = repr(value)
        # YAML 1.1 readers (PyYAML) take "1e-06" for a string: a float needs a dot before the exponent.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def toml_value(value) -> str:
    """`value` as a TOML value (TOML has no null: leave None out)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def yaml_text(values: Mapping) -> str:
    """YAML text of `values`, one key a line."""
    return "".join(f"{key}: {yaml_value(value)}\n" for key, value in values.items())


def toml_text(values: Mapping) -> str:
    """TOML text of `values`, one key a line; None values are left out (TOML has no null)."""
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items() if value is not None)


def read_option_file(path: str | Path) -> dict:
    """The mapping in a .yaml/.yml/.toml file, with '-' in its keys read as '_' (keys not yet checked).

    Raises ConfigError for a missing file, another suffix, a syntax error, or a file that holds no mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        elif path.suffix == ".toml":
            values = tomllib.loads(text)
        else:
            raise ConfigError(f"config file {path} must end in .yaml, .yml or .toml")
    except ConfigError:
        raise
    except Exception as error:  # a syntax error: one line naming the file
        raise ConfigError(f"cannot read config file {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return {key.replace("-", "_"): value for key, value in values.items()}

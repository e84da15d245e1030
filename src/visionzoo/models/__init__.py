"""Model families. Importing this package registers every family's architectures."""

from . import byobnet, vit  # noqa: F401

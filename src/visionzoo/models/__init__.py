"""Model families. Importing this package registers every family's architectures."""

from . import byobnet, hiera, vit  # noqa: F401

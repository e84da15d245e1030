"""Model families. Importing this package registers every family's architectures."""

from . import mobile, vit  # noqa: F401

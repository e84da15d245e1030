"""Model families. Importing this package registers every family's architectures."""

from . import vit  # noqa: F401

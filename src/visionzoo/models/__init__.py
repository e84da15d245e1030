"""Model families. Importing this package registers every family's architectures."""

from . import (
    mambaout,  # noqa: F401
    vit,  # noqa: F401
)

"""Model families. Importing this package registers every family's architectures."""

from . import (
    convnext,  # noqa: F401
    resnet,  # noqa: F401
    vit,  # noqa: F401
)

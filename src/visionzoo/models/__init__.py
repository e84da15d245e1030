"""Model families. Importing this package registers every family's architectures."""

from . import (  # noqa: F401
    byobnet,
    convnext,
    hiera,
    mambaout,
    mobile,
    resnet,
    vit,
)

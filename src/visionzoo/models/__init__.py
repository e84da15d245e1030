"""Model families. `FAMILIES` lists each family's model class and variants; the registry reads it.

A family module defines its model class and a `VARIANTS` dict (arch name -> config) and knows nothing of the
registry: adding a family is one row here.
"""

from . import byobnet, convnext, hiera, mambaout, resnet, vit
from .mobile import nets as mobile

# family name -> (model class, {arch name: config})
FAMILIES = {
    "byobnet": (byobnet.ByobNet, byobnet.VARIANTS),
    "convnext": (convnext.ConvNext, convnext.VARIANTS),
    "hiera": (hiera.Hiera, hiera.VARIANTS),
    "mambaout": (mambaout.MambaOut, mambaout.VARIANTS),
    "mobile": (mobile.MobileNet, mobile.VARIANTS),
    "resnet": (resnet.ResNet, resnet.VARIANTS),
    "vit": (vit.VisionTransformer, vit.VARIANTS),
}

"""Training recipes as data: the hyperparameters each published tag was trained with, and their sources.

Each `*.toml` file here holds one recipe family. A recipe lists the tags (`arch.tag`) it trained and its
hyperparameters in three groups, so that no value passes for more than it is:

- `stated`: read at the recipe's `source` (or at the URL `cite` gives for that field);
- `inferred`: not written at the source, derived for a stated reason (`why` says which);
- `unverified`: given by a secondary account (named in `why`) that could not be checked at the source.

Fields a recipe does not give are unknown, and say so. A tag with no public recipe is listed under
`[[no_recipe]]` with the reason (ported weights, unpublished hparams). The option names are those of
`visionzoo train` (see `FIELDS`), so `Recipe.options()` is a valid train config file.

    from visionzoo.recipes import resolve_tag
    recipe = resolve_tag("mobilenetv4_conv_small.e2400_r224_in1k")   # Recipe, or NoRecipe with its reason
"""

from .loader import get_recipe, list_no_recipes, list_recipes, resolve_tag
from .record import FIELDS, RECORD_ONLY, STATUSES, NoRecipe, Recipe, RecipeError, to_yaml

__all__ = ["FIELDS", "RECORD_ONLY", "STATUSES", "NoRecipe", "Recipe", "RecipeError", "get_recipe",
           "list_no_recipes", "list_recipes", "resolve_tag", "to_yaml"]

"""Reading the recipes: the `*.toml` files of this package, checked against the rules of `record.py`, and
finding a recipe by name or by a tag it trained."""

from __future__ import annotations

import difflib
import fnmatch
import sys
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

from .record import FIELDS, STATUSES, NoRecipe, Recipe, RecipeError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _frozen(table: dict | None) -> Mapping:
    return MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in (table or {}).items()})


def _recipe(entry: dict, where: str) -> Recipe:
    allowed = {"name", "summary", "source", "status", "tags", "stated", "inferred", "unverified", "why",
               "cite", "parents", "notes"}
    unknown = set(entry) - allowed
    if unknown:
        raise RecipeError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    name = entry.get("name", "?")
    recipe = Recipe(name=name, summary=entry["summary"], source=entry["source"], status=entry["status"],
                    tags=tuple(entry["tags"]), stated=_frozen(entry.get("stated")),
                    inferred=_frozen(entry.get("inferred")), unverified=_frozen(entry.get("unverified")),
                    why=_frozen(entry.get("why")), cite=_frozen(entry.get("cite")),
                    parents=_frozen(entry.get("parents")), notes=entry.get("notes", ""))
    if recipe.status not in STATUSES:
        raise RecipeError(f"{where}: recipe {name!r} status must be one of {STATUSES}, got {recipe.status!r}")
    groups = [set(recipe.stated), set(recipe.inferred), set(recipe.unverified)]
    for key in set().union(*groups):
        if key not in FIELDS:
            raise RecipeError(f"{where}: recipe {name!r} has unknown field {key!r}; "
                              f"fields: {', '.join(FIELDS)}")
        if sum(key in group for group in groups) > 1:
            raise RecipeError(f"{where}: recipe {name!r} gives {key!r} in more than one provenance group")
    for key in groups[1] | groups[2]:
        if key not in recipe.why:
            raise RecipeError(f"{where}: recipe {name!r}: inferred/unverified field {key!r} needs a `why`")
    return recipe


@cache
def _load() -> tuple[dict[str, Recipe], dict[str, NoRecipe]]:
    recipes: dict[str, Recipe] = {}
    no_recipes: dict[str, NoRecipe] = {}
    files = sorted(p for p in resources.files("visionzoo.recipes").iterdir() if p.name.endswith(".toml"))
    for path in files:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for entry in data.get("recipe", []):
            recipe = _recipe(entry, path.name)
            if recipe.name in recipes:
                raise RecipeError(f"{path.name}: recipe {recipe.name!r} is defined twice")
            recipes[recipe.name] = recipe
        for entry in data.get("no_recipe", []):
            record = NoRecipe(tags=tuple(entry["tags"]), reason=entry["reason"],
                              source=entry.get("source", ""))
            for tag in record.tags:
                no_recipes[tag] = record
    return recipes, no_recipes


def list_recipes(pattern: str | None = None) -> list[Recipe]:
    """Recipes whose name or one of whose tags matches the shell-style `pattern` (all when None)."""
    recipes = _load()[0].values()
    if pattern is None:
        return list(recipes)
    return [r for r in recipes if fnmatch.fnmatch(r.name, pattern) or fnmatch.filter(r.tags, pattern)]


def list_no_recipes(pattern: str | None = None) -> list[tuple[str, NoRecipe]]:
    """(tag, record) for the tags without a public recipe that match the shell-style `pattern`."""
    return [(tag, record) for tag, record in _load()[1].items()
            if pattern is None or fnmatch.fnmatch(tag, pattern)]


def get_recipe(name: str) -> Recipe:
    """A recipe by its name, or the recipe of a tag `arch.tag` resolved for that tag (see `Recipe.for_tag`).

    Raises:
        RecipeError: unknown name, or a tag with no public recipe (the message gives the reason).
    """
    recipes, no_recipes = _load()
    if name in recipes:
        return recipes[name]
    found = resolve_tag(name)
    if isinstance(found, NoRecipe):
        raise RecipeError(f"{name} has no public recipe: {found.reason}")
    return found


def resolve_tag(tag: str) -> Recipe | NoRecipe:
    """The recipe that trained `tag` (resolved for it), or the record saying why there is none."""
    recipes, no_recipes = _load()
    for recipe in recipes.values():
        if tag in recipe.tags:
            return recipe.for_tag(tag)
    if tag in no_recipes:
        return no_recipes[tag]
    close = difflib.get_close_matches(tag, [*recipes, *(t for r in recipes.values() for t in r.tags)], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `visionzoo recipes` to list them"
    raise RecipeError(f"no recipe or tag named {tag!r}{hint}")

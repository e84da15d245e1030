"""`visionzoo recipes [PATTERN] [--show]`: training recipes with their sources, or one recipe as YAML."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", metavar="PATTERN",
                        help="a recipe name or arch.tag, or shell-style wildcards over both, "
                             "e.g. 'mobilenetv4*'")
    parser.add_argument("--show", action="store_true",
                        help="print the one recipe PATTERN names (a recipe or an arch.tag) as the YAML that "
                             "`visionzoo train --config` reads, with each value's provenance as a comment")


def run(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..recipes import (
        NoRecipe,
        RecipeError,
        get_recipe,
        list_no_recipes,
        list_recipes,
        resolve_tag,
        to_yaml,
    )
    from .models import format_table

    if args.show:
        if not args.pattern:
            raise UserError("--show needs a recipe name or arch.tag, e.g. "
                            "`visionzoo recipes mobilenetv4_conv_small.e2400_r224_in1k --show`")
        try:
            found = get_recipe(args.pattern) if "." not in args.pattern else resolve_tag(args.pattern)
        except RecipeError as error:
            raise UserError(str(error)) from None
        if isinstance(found, NoRecipe):  # a tag whose reason for having no recipe is the answer
            print(f"# {args.pattern}: no public recipe: {found.reason}" + (f"\n# source: {found.source}"
                                                                            if found.source else ""))
        else:
            print(to_yaml(found), end="")
        return 0
    recipes = list_recipes(args.pattern)
    no_recipes = list_no_recipes(args.pattern) if args.pattern else []
    if not recipes and not no_recipes:
        raise UserError(f"no recipe or tag matches {args.pattern!r}; run `visionzoo recipes` to see them all")
    rows = []
    for recipe in recipes:
        counts = f"{len(recipe.stated)}/{len(recipe.inferred)}/{len(recipe.unverified)}"
        rows.append([recipe.name, recipe.status, str(len(recipe.tags)), counts, recipe.source])
    for tag, record in no_recipes:
        rows.append([tag, "none", "-", "-", record.reason])
    print(format_table(["recipe", "status", "tags", "stated/inferred/unverified", "source"], rows))
    return 0

"""Training recipes as data: the hyperparameters each published tag was trained with, and their sources.

Each `*.toml` file here holds one recipe family. A recipe lists the tags (`arch.tag`) it trained and its
hyperparameters in three groups, so that no value passes for more than it is:

- `stated`: read at the recipe's `source` (or at the URL `cite` gives for that field);
- `inferred`: not written at the source, derived for a stated reason (`why` says which);
- `unverified`: given by a secondary account (named in `why`) that could not be checked at the source.

Fields a recipe does not give are unknown, and say so. A tag with no public recipe is listed under
`[[no_recipe]]` with the reason (ported weights, unpublished hparams). The option names are those of
`visionzoo train` (see `FIELDS`), so `Recipe.options()` is a valid `--config`.

    from visionzoo.recipes import resolve_tag
    recipe = resolve_tag("mobilenetv4_conv_small.e2400_r224_in1k")   # Recipe, or NoRecipe with its reason
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType

from ..errors import UserError
from ..registry import get_pretrained_cfg

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Every hyperparameter a recipe may carry: the train command's option name -> what it means.
FIELDS = {
    "opt": "optimizer (sgd, momentum, adamw, rmsproptf, lamb, nadamw, adopt, ...)",
    "opt_betas": "Adam-family betas",
    "opt_eps": "optimizer epsilon",
    "momentum": "SGD / RMSprop momentum",
    "lr": "peak learning rate at the recipe's global batch",
    "lr_base": "learning rate at batch lr_base_size, rescaled to the global batch by lr_base_scale",
    "lr_base_size": "the batch lr_base refers to",
    "lr_base_scale": "how the lr follows the global batch: linear or sqrt",
    "batch_size": "batch per process",
    "global_batch_size": "batch per update over all processes (recipe record only)",
    "weight_decay": "weight decay",
    "layer_decay": "per-depth learning-rate decay (fine-tuning)",
    "sched": "learning-rate schedule: cosine, step, constant",
    "warmup_epochs": "warmup length", "warmup_lr": "learning rate warmup starts from",
    "min_lr": "floor of the schedule", "cooldown_epochs": "epochs at min_lr after the schedule",
    "decay_epochs": "step schedule period", "decay_rate": "step schedule factor",
    "lr_noise": "learning-rate noise range (epoch fractions; not in the train command)",
    "epochs": "training epochs",
    "smoothing": "label smoothing",
    "drop": "dropout before the classifier", "drop_path": "stochastic depth rate",
    "ema": "decay of the weights' moving average",
    "clip_grad": "gradient clipping threshold", "clip_mode": "clip by norm or value",
    "amp": "autocast precision: bf16 or fp16",
    "channels_last": "channels-last memory format",
    "img_size": "train crop size",
    "crop_pct": "eval crop fraction of the validation during training (recipe record only)",
    "test_img_size": "size the published result is best at (recipe record only)",
    "aa": "RandAugment string", "reprob": "random erasing probability", "remode": "random erasing fill",
    "recount": "random erasing boxes", "mixup": "mixup alpha", "cutmix": "cutmix alpha",
    "mixup_prob": "chance of mixing a batch", "mixup_switch_prob": "chance of cutmix over mixup",
    "mixup_off_epoch": "epoch mixing stops", "aug_repeats": "repeated-augmentation copies",
    "bce_loss": "binary cross-entropy loss", "bce_target_thresh": "BCE target threshold",
    "bce_sum": "BCE summed over classes", "scale": "random-resized crop area range",
    "ratio": "random-resized crop aspect range", "hflip": "horizontal flip probability",
    "vflip": "vertical flip probability", "color_jitter": "colour jitter strength",
    "color_jitter_prob": "chance of colour jitter", "grayscale_prob": "chance of grayscale",
    "gaussian_blur_prob": "chance of blur", "train_interpolation": "crop interpolation (random: per image)",
    "dataset": "training set (imagenet-1k, imagenet-12k)", "num_classes": "classes of the trained head",
}
# Fields that describe the recipe but are not options of `visionzoo train`.
RECORD_ONLY = ("global_batch_size", "test_img_size", "dataset", "lr_noise", "crop_pct")
STATUSES = ("published", "partial", "not_public")
_TAG_EPOCHS = re.compile(r"(?:^|_)e(\d+)(?:_|$)")
_TAG_SIZE = re.compile(r"(?:^|_)r(\d+)(?:_|$)")


class RecipeError(UserError):
    """An unknown recipe name, or recipe data that breaks the rules above."""


@dataclass(frozen=True)
class Recipe:
    """One recipe: its tags, hyperparameters by provenance, and sources. Read-only."""

    name: str
    summary: str
    source: str
    status: str
    tags: tuple[str, ...]
    stated: Mapping = field(default_factory=dict)
    inferred: Mapping = field(default_factory=dict)
    unverified: Mapping = field(default_factory=dict)
    why: Mapping = field(default_factory=dict)
    cite: Mapping = field(default_factory=dict)
    parents: Mapping = field(default_factory=dict)
    notes: str = ""
    family: str = ""

    def options(self, train_only: bool = False) -> dict:
        """Every known hyperparameter, in `FIELDS` order; `train_only` drops the record-only fields."""
        merged = {**self.unverified, **self.inferred, **self.stated}
        return {key: merged[key] for key in FIELDS if key in merged
                and not (train_only and key in RECORD_ONLY)}

    def train_options(self) -> dict:
        """The options for `visionzoo train --config`: record-only fields dropped, and an `lr` given at the
        recipe's global batch turned into `lr_base` at `lr_base_size` = that batch, so that the train
        command rescales it to the global batch it runs with (by `lr_base_scale`, or the optimizer's
        default rule)."""
        options = self.options(train_only=True)
        batch = self.options().get("global_batch_size")
        if "lr" in options and "lr_base" not in options and batch:
            options["lr_base"], options["lr_base_size"] = options.pop("lr"), batch
        return {key: options[key] for key in FIELDS if key in options}

    def provenance(self, key: str) -> str:
        """'stated', 'inferred', 'unverified' or 'unknown' for field `key`."""
        for name in ("stated", "inferred", "unverified"):
            if key in getattr(self, name):
                return name
        return "unknown"

    def parent(self, tag: str) -> str | None:
        """The tag a fine-tune recipe starts from (`*_ft_in1k` without the suffix, unless `parents` says)."""
        if tag in self.parents:
            return self.parents[tag]
        return tag[: -len("_ft_in1k")] if tag.endswith("_ft_in1k") else None

    def for_tag(self, tag: str) -> Recipe:
        """This recipe resolved for one of its tags: the fields the tag's name and published config give
        (epochs `e<N>`, train size `r<M>`, classes, test size) are added where the recipe has none."""
        if tag not in self.tags:
            raise RecipeError(f"recipe {self.name!r} does not train {tag!r}; "
                              f"its tags: {', '.join(self.tags)}")
        known = self.options()
        inferred, why, stated, cite = dict(self.inferred), dict(self.why), dict(self.stated), dict(self.cite)
        label = tag.split(".", 1)[1]
        # A fine-tune's e<N>/r<M> describe its parent's pretraining, not the fine-tune: no inference there.
        name_fields = () if self.parent(tag) else (("epochs", _TAG_EPOCHS, "e<N>: epochs"),
                                                   ("img_size", _TAG_SIZE, "r<M>: train resolution"))
        for key, pattern, meaning in name_fields:
            match = pattern.search(label)
            if match and key not in known:
                inferred[key] = int(match.group(1))
                why[key] = f"from the tag name ({meaning}), the reference's naming convention"
        cfg = get_pretrained_cfg(tag)
        hub = f"https://huggingface.co/{cfg.hf_hub_id}/blob/main/config.json"
        if "num_classes" not in known:
            stated["num_classes"], cite["num_classes"] = cfg.num_classes, hub
        test_size = (cfg.test_input_size or cfg.input_size)[1]
        if "test_img_size" not in known:
            stated["test_img_size"], cite["test_img_size"] = test_size, hub
        return Recipe(name=tag, summary=self.summary, source=self.source, status=self.status, tags=(tag,),
                      stated=MappingProxyType(stated), inferred=MappingProxyType(inferred),
                      unverified=self.unverified, why=MappingProxyType(why), cite=MappingProxyType(cite),
                      parents=MappingProxyType({tag: self.parent(tag)} if self.parent(tag) else {}),
                      notes=self.notes, family=self.name)


@dataclass(frozen=True)
class NoRecipe:
    """Tags without a public recipe, and why (ported weights, unpublished hparams)."""

    tags: tuple[str, ...]
    reason: str
    source: str = ""


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
    import difflib

    close = difflib.get_close_matches(tag, [*recipes, *(t for r in recipes.values() for t in r.tags)], n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `visionzoo recipes` to list them"
    raise RecipeError(f"no recipe or tag named {tag!r}{hint}")


def _yaml_scalar(value) -> str:
    import json

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    if isinstance(value, float):
        text = repr(value)
        # YAML 1.1 readers (PyYAML) take "1e-06" for a string: a float needs a dot before the exponent.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    return json.dumps(value) if isinstance(value, str) else str(value)


def to_yaml(recipe: Recipe) -> str:
    """The recipe as the YAML `visionzoo train --config` reads: train options as keys, everything else
    (record-only fields, provenance, sources, unknown fields) as comments."""
    family = f", family {recipe.family}" if recipe.family else ""
    lines = [f"# recipe: {recipe.name} ({recipe.status}){family}",
             f"# {recipe.summary}", f"# source: {recipe.source}"]
    if recipe.notes:
        lines += [f"# note: {line}" for line in recipe.notes.strip().splitlines()]
    for tag in recipe.tags:
        if recipe.parent(tag):
            lines.append(f"# fine-tune of: {recipe.parent(tag)}")
    train = recipe.train_options()
    for key, value in recipe.options().items():
        kind = recipe.provenance(key)
        detail = recipe.cite.get(key, "the source") if kind == "stated" else recipe.why.get(key, "")
        comment = f"  # {kind}" + (f": {detail}" if detail else "")
        prefix = "" if key in train and train[key] == value else "# "
        lines.append(f"{prefix}{key}: {_yaml_scalar(value)}{comment}")
    for key in ("lr_base", "lr_base_size"):
        if key in train and key not in recipe.options():
            lines.append(f"{key}: {_yaml_scalar(train[key])}  # the lr above at the recipe's global batch: "
                         "the train command rescales it to the global batch it runs with")
    given = {*recipe.options(), *train, *RECORD_ONLY}
    missing = [key for key in FIELDS if key not in given]
    if missing:
        lines.append(f"# unknown (not given by any source read): {', '.join(missing)}")
    return "\n".join(lines) + "\n"

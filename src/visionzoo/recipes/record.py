"""The record of a training recipe: its tags, its hyperparameters by provenance, its sources; the fields a
recipe may give; and the recipe written as the YAML `visionzoo train` reads.

The fields are the recipe options of `visionzoo.train.TrainConfig` (those marked `recipe=True`), plus the few
that describe a recipe without being an option of the train command (`RECORD_ONLY`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..errors import UserError, name_options
from ..option_files import yaml_value
from ..options import option_fields
from ..registry import get_pretrained_cfg
from ..train.config import TrainConfig

# Fields that describe the recipe but are not options of `visionzoo train`, and what they mean.
RECORD_FIELDS = {
    "global_batch_size": "batch per update over all processes (recipe record only)",
    "lr_noise": "learning-rate noise range (epoch fractions; not in the train command)",
    "test_img_size": "size the published result is best at (recipe record only)",
    "dataset": "training set (imagenet-1k, imagenet-12k)",
}
RECORD_ONLY = tuple(RECORD_FIELDS)
# Every hyperparameter a recipe may carry: the option name -> what it means.
FIELDS = {**{option.name: name_options(option.help) for option in option_fields(TrainConfig)
             if option.recipe}, **RECORD_FIELDS}
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
    stated: Mapping  # field -> value, as read at the source
    inferred: Mapping  # field -> value derived for a stated reason (in `why`)
    unverified: Mapping  # field -> value from a secondary account (named in `why`)
    why: Mapping  # field -> the reason of an inferred or unverified value
    cite: Mapping  # field -> the URL a stated value was read at, where not `source`
    parents: Mapping  # tag -> the tag a fine-tune starts from, where not the name's
    notes: str = ""
    family: str = ""

    def options(self, train_only: bool = False) -> dict:
        """Every known hyperparameter, in `FIELDS` order; `train_only` drops the record-only fields."""
        merged = {**self.unverified, **self.inferred, **self.stated}
        return {key: merged[key] for key in FIELDS if key in merged
                and not (train_only and key in RECORD_ONLY)}

    def train_options(self) -> dict:
        """The options of a train config: record-only fields dropped, and an `lr` given at the
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


def to_yaml(recipe: Recipe) -> str:
    """The recipe as the YAML a train config file holds: train options as keys, everything else
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
        lines.append(f"{prefix}{key}: {yaml_value(value)}{comment}")
    for key in ("lr_base", "lr_base_size"):
        if key in train and key not in recipe.options():
            lines.append(f"{key}: {yaml_value(train[key])}  # the lr above at the recipe's global batch: "
                         "the train command rescales it to the global batch it runs with")
    given = {*recipe.options(), *train, *RECORD_ONLY}
    missing = [key for key in FIELDS if key not in given]
    if missing:
        lines.append(f"# unknown (not given by any source read): {', '.join(missing)}")
    return "\n".join(lines) + "\n"

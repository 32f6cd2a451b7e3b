"""The descendant relation between models, and the libraries a model supports.

A model's declared base models (`base_models`, from card `base_model` and `base_model:`
tags, already merged by the crawler) name their bases by repo name; the relation type
(finetune / adapter / quantized / merge) is kept in `base_model_relation`. The library list
of metrics.md is kept here, in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

# Libraries a model can "support" (M1): its `library_name`, or one of these among its tags.
LIBRARIES: tuple[str, ...] = (
    "transformers", "pytorch", "safetensors", "tf", "jax", "onnx", "gguf", "diffusers",
    "peft", "sentence-transformers", "timm", "keras", "tensorboard", "adapter-transformers",
    "mlx", "stable-baselines3", "ml-agents", "openvino", "coreml", "tflite", "flair",
    "spacy", "fastai", "espnet", "speechbrain", "nemo", "paddlepaddle", "setfit", "gliner",
)  # fmt: skip

RELATIONS: tuple[str, ...] = ("finetune", "adapter", "quantized", "merge")


def with_libraries(models: pl.DataFrame) -> pl.DataFrame:
    """Add `libraries` (list): library_name plus the known library tags, deduplicated."""
    tags = pl.col("tags").fill_null(pl.lit([], pl.List(pl.String)))
    lib_tags = tags.list.eval(pl.element().filter(pl.element().is_in(list(LIBRARIES))))
    own = (
        pl.when(pl.col("library_name").is_not_null())
        .then(pl.concat_list(pl.col("library_name")))
        .otherwise(pl.lit([], pl.List(pl.String)))
    )
    return models.with_columns(libraries=pl.concat_list(own, lib_tags).list.unique().list.sort())


def edges(models: pl.DataFrame, relations: Sequence[str] = ()) -> pl.DataFrame:
    """child_id, child_name, base_name, relation: one row per declared (child, base) pair.

    `relations` keeps only children whose relation is listed (empty = every relation).
    """
    lf = models.lazy().select(
        pl.col("entity_id").alias("child_id"),
        pl.col("name").alias("child_name"),
        pl.col("base_models").alias("base_name"),
        pl.col("base_model_relation").alias("relation"),
    )
    if relations:
        lf = lf.filter(pl.col("relation").is_in(list(relations)))
    return (
        lf.explode("base_name")
        .filter(pl.col("base_name").is_not_null() & (pl.col("base_name") != pl.col("child_name")))
        .unique(["child_id", "base_name"])
        .collect()
    )


def descendant_counts(models: pl.DataFrame, relations: Sequence[str] = ()) -> pl.DataFrame:
    """entity_id, name, descendants: number of direct descendants of every model (0 for none)."""
    e = edges(models, relations)
    per_base = e.group_by("base_name").agg(pl.col("child_id").n_unique().alias("descendants"))
    return (
        models.select("entity_id", "name")
        .join(per_base, left_on="name", right_on="base_name", how="left")
        .with_columns(pl.col("descendants").fill_null(0).cast(pl.Int64))
    )

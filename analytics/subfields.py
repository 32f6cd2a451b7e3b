"""Sub-fields (paper B tables 7-9): NLP, CV, multimodal, selected by tag lists kept here.

A repo belongs to a sub-field when its `pipeline_tag`, or any tag (also after a
`task_categories:` / `task_ids:` prefix), is in that sub-field's list. A repo can belong to
several sub-fields.
"""

from __future__ import annotations

import polars as pl

SUBFIELDS: dict[str, tuple[str, ...]] = {
    "nlp": (
        "text-generation", "text-classification", "fill-mask", "token-classification",
        "question-answering", "text2text-generation", "translation", "summarization",
        "sentence-similarity", "feature-extraction", "zero-shot-classification",
        "table-question-answering", "conversational", "text-retrieval",
    ),
    "cv": (
        "image-classification", "object-detection", "image-segmentation", "depth-estimation",
        "image-to-image", "unconditional-image-generation", "video-classification",
        "zero-shot-image-classification", "mask-generation", "keypoint-detection",
    ),
    "multimodal": (
        "image-text-to-text", "text-to-image", "image-to-text", "visual-question-answering",
        "document-question-answering", "text-to-video", "image-text-retrieval",
        "any-to-any", "video-text-to-text", "text-to-speech", "automatic-speech-recognition",
        "audio-text-to-text",
    ),
}  # fmt: skip


def subfield_expr(name: str) -> pl.Expr:
    """True for rows (with `pipeline_tag` and `tags`) in sub-field `name`."""
    if name not in SUBFIELDS:
        raise ValueError(f"unknown sub-field {name!r}; sub-fields: {', '.join(SUBFIELDS)}")
    tags = list(SUBFIELDS[name])
    bare = (
        pl.col("tags")
        .fill_null(pl.lit([], pl.List(pl.String)))
        .list.eval(pl.element().str.replace(r"^(task_categories|task_ids):", ""))
    )
    return pl.col("pipeline_tag").is_in(tags).fill_null(False) | bare.list.eval(
        pl.element().is_in(tags)
    ).list.any().fill_null(False)

"""M1, M3, M4 on the hand-made paper world (tests/analytics/world.py), against hand sums
and scipy."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from analytics import card_rules, compute_measure
from storage import Store


def test_m1_library_preservation_by_hand(paper_store: Store) -> None:
    df = compute_measure(paper_store, "library_preservation", source="hub:model", at=1)
    got = {
        r["library"]: (r["base_models"], r["descendants"], r["preserving"]) for r in df.to_dicts()
    }
    # B_transformers = {base1 (ft-a, ft-b, q-c), ft-a (ft-e)}: ft-a and ft-e keep it -> 2/4
    assert got["transformers"] == (2, 4, 2)
    # safetensors: base1 and ft-a are bases; only ft-a keeps it -> 1/4
    assert got["safetensors"] == (2, 4, 1)
    # pytorch: only base1 (ft-a has no pytorch tag); none of its 3 children keep it
    assert got["pytorch"] == (1, 3, 0)
    # diffusers: base2 supports one library only -> not in B
    assert "diffusers" not in got
    assert df.filter(pl.col("library") == "transformers")["preservation_rate"][0] == 0.5


def test_m1_relation_filter(paper_store: Store) -> None:
    df = compute_measure(
        paper_store,
        "library_preservation",
        source="hub:model",
        at=1,
        params={"relations": ["finetune"]},
    )
    got = {r["library"]: (r["descendants"], r["preserving"]) for r in df.to_dicts()}
    assert got["transformers"] == (2, 2)  # ft-a (of base1) and ft-e (of ft-a)


def test_m3_against_scipy(paper_store: Store) -> None:
    df = compute_measure(paper_store, "descendants_popularity", source="hub:model", at=1)
    downloads = np.array([1000, 500, 100, 50, 10, 5, 1], dtype=float)
    descendants = np.array([3, 1, 1, 0, 0, 0, 0], dtype=float)  # base1, base2, ft-a
    x, y = np.log10(1 + downloads), np.log10(1 + descendants)
    row = df.row(0, named=True)
    assert row["n"] == 7 and row["with_descendants"] == 3
    assert row["slope"] == pytest.approx(stats.linregress(x, y).slope)
    assert row["pearson_log"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert row["spearman"] == pytest.approx(stats.spearmanr(downloads, descendants).statistic)
    heat = compute_measure(paper_store, "descendants_heatmap", source="hub:model", at=1)
    assert heat["models"].sum() == 7


def test_card_rules_detect_sections_from_headings_and_text() -> None:
    assert card_rules.sections_present(
        [
            "Model description",
            "How to use",
            "Training data",
            "Evaluation results",
            "Limitations and bias",
        ],
        "",
    ) == list(card_rules.SECTIONS)
    assert card_rules.sections_present(["Usage"], "Fine-tuned.\n**Training data**\nsquad") == [
        "how_to_use",
        "training",
    ]
    assert card_rules.sections_present(["Citation"], "plain text") == []
    assert card_rules.metadata_present(["license", "model_index", "foo"]) == [
        "license",
        "model-index",
    ]


def test_m4_top_vs_bottom_with_mann_whitney(paper_store: Store) -> None:
    scores = compute_measure(
        paper_store, "documentation_scores", source="hub:model", at=1, params={"group_n": 2}
    )
    by = {r["entity_id"]: r for r in scores.filter(pl.col("ranking") == "downloads").to_dicts()}
    # base1: 5/5 sections, 4 of 9 metadata fields (card front matter)
    assert by["m1"]["completeness"] == 1.0
    assert by["m1"]["score"] == pytest.approx((1 + 4 / 9) / 2)
    # base2: no card -> availability from the listing's card_fields (license) only
    assert by["m2"]["completeness"] is None and by["m2"]["score"] == pytest.approx(1 / 9)
    df = compute_measure(
        paper_store, "documentation", source="hub:model", at=1, params={"group_n": 2}
    )
    row = df.filter((pl.col("ranking") == "downloads") & (pl.col("metric") == "score")).row(
        0, named=True
    )
    top, bottom = [(1 + 4 / 9) / 2, 1 / 9], [0.0, 0.0]  # bottom two by downloads: ft-d, ft-e
    exp = stats.mannwhitneyu(top, bottom, alternative="two-sided")
    assert row["u"] == pytest.approx(exp.statistic) and row["p_value"] == pytest.approx(exp.pvalue)
    assert row["median_top"] == pytest.approx(np.median(top))

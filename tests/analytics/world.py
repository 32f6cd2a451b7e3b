"""Hand-made worlds written THROUGH the store, for the analytics tests.

`hub(name, **fields)` and `pkg(name, **fields)` build listing rows with every logical column
(unset ones null); `snapshot(store, source, day, rows, details)` writes one complete
snapshot with its detail tables.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storage import Store, schemas

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def hub(entity_id: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(schemas.HUB_REPO.names)
    row.update(entity_id=entity_id, name=name or f"org/{entity_id}", author="org")
    row.update(fields)
    return row


def pkg(name: str, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(schemas.REGISTRY_PACKAGE.names)
    row.update(entity_id=name, name=name, ecosystem="npm")
    row.update(fields)
    return row


def snapshot(
    store: Store,
    source: str,
    at: datetime,
    rows: list[dict[str, Any]],
    details: dict[str, list[dict[str, Any]]] | None = None,
) -> int:
    """Write one complete snapshot of `source` as of `at`; returns its id."""
    w = store.begin_snapshot(source, as_of=at)
    assert w.write_batch(0, rows)
    for kind, drows in (details or {}).items():
        filled = []
        for d in drows:
            full: dict[str, Any] = dict.fromkeys(schemas.DETAIL_SCHEMAS[kind].names)
            full.update(snapshot_id=w.snapshot_id)
            full.update(d)
            filled.append(full)
        assert w.write_details(kind, 0, filled)
    info = w.finish("complete")
    return int(info.snapshot_id)


def _commit(eid: str, n: int, authors: list[str], when: datetime) -> dict[str, Any]:
    return {
        "repo_type": "model",
        "entity_id": eid,
        "commit_id": f"{eid}-{n}",
        "date": when,
        "title": "Update README.md",
        "authors": authors,
    }


def paper_models(second: bool = False) -> list[dict[str, Any]]:
    """Seven models with lineage, libraries and licenses (see test_paper_a for the sums)."""
    rows = [
        hub("m1", "org/base1", library_name="transformers", tags=["transformers", "pytorch", "safetensors"], downloads=1000, likes=50, license="apache-2.0", card_fields=["license"], created_at=day(-40), pipeline_tag="text-generation"),
        hub("m2", "org/base2", library_name="diffusers", tags=["diffusers"], downloads=500, likes=60, card_fields=["license"], created_at=day(-35), pipeline_tag="text-to-image"),
        hub("m3", "u1/ft-a", base_models=["org/base1"], base_model_relation="finetune", library_name="transformers", tags=["transformers", "safetensors"], downloads=100, likes=5, license="mit", created_at=day(-20), pipeline_tag="text-generation"),
        hub("m4", "u2/ft-b", base_models=["org/base1"], base_model_relation="adapter", library_name="peft", tags=["peft"], downloads=50, likes=1, license="cc-by-nc-4.0", created_at=day(-10)),
        hub("m5", "u3/q-c", base_models=["org/base1"], base_model_relation="quantized", library_name="gguf", tags=["gguf"], downloads=10, likes=0, created_at=day(-5)),
        hub("m6", "u4/ft-d", base_models=["org/base2"], base_model_relation="finetune", library_name="diffusers", downloads=5, likes=2, created_at=day(-3)),
        hub("m7", "u5/ft-e", base_models=["u1/ft-a"], base_model_relation="finetune", library_name="transformers", tags=["transformers", "pytorch"], downloads=1, likes=0, license="llama2", created_at=day(-1)),
    ]  # fmt: skip
    if second:
        rows = [r for r in rows if r["entity_id"] != "m6"]  # deleted
        for r in rows:
            if r["entity_id"] == "m7":
                r["name"] = "u5/ft-e-v2"  # renamed
            if r["entity_id"] == "m3":
                r["sha"] = "new"  # updated
        rows.append(hub("m8", "u6/new", downloads=3, created_at=day(10)))
    return rows


def paper_details() -> dict[str, list[dict[str, Any]]]:
    commits = []
    for i, authors in enumerate(
        [["alice"], ["alice"], ["Alice"], ["bob"], ["bob"], ["librarian-bot"], ["carol", "bob"]]
    ):
        commits.append(_commit("m1", i, authors, day(-30 + i)))
    commits += [_commit("m3", 0, ["dave"], day(-15))]
    commits += [
        _commit("m2", 0, ["erin"], day(-12)),
        _commit("m2", 1, ["frank"], day(-11)),
        _commit("m2", 2, ["frank[bot]"], day(-10)),
    ]
    discussions = [
        {"repo_type": "model", "entity_id": "m1", "num": 1, "author": "zed", "is_pull_request": False, "status": "open"},
        {"repo_type": "model", "entity_id": "m1", "num": 2, "author": "alice", "is_pull_request": True, "status": "merged"},
        {"repo_type": "model", "entity_id": "m1", "num": 3, "author": "deleted", "is_pull_request": False, "status": "closed"},
    ]  # fmt: skip
    cards = [
        {"repo_type": "model", "entity_id": "m1", "sha": "a", "length": 900, "headings": ["Model description", "How to use", "Training data", "Evaluation results", "Limitations and bias"], "metadata_fields": ["license", "language", "datasets", "metrics"], "text_sample": "A model."},
        {"repo_type": "model", "entity_id": "m3", "sha": "b", "length": 300, "headings": ["Usage"], "metadata_fields": ["license", "base_model"], "text_sample": "Fine-tuned.\n**Training data**\nsquad"},
    ]  # fmt: skip
    return {"commits": commits, "discussions": discussions, "cards": cards}


def paper_spaces() -> list[dict[str, Any]]:
    return [
        hub("s1", "x/app1", space_models=["org/base1", "u1/ft-a"], likes=3, sdk="gradio"),
        hub("s2", "x/app2", space_models=["org/base1"], likes=1, sdk="gradio"),
        hub("s3", "y/app3", space_models=["org/base2", "org/base1"], likes=0, sdk="docker"),
        hub("s4", "y/app4", space_models=[], likes=0, sdk="static"),
    ]


def paper_world(store: Store) -> Store:
    """hub:model at day 7 and day 14 (delete, rename, update, create), hub:space at day 14."""
    snapshot(store, "hub:model", day(7), paper_models(), paper_details())
    snapshot(store, "hub:model", day(14), paper_models(second=True))
    snapshot(store, "hub:space", day(14), paper_spaces())
    return store

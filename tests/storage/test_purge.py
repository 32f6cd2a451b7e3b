"""Purge (issue 16 point 5): an entity, or one field, out of every table and snapshot.

Every other entity's state at every snapshot (as-of, history, top-k, details, events) is
the same before and after; the purged one is nowhere, not in any file left on disk
(data files, log entries, checkpoints, staged blobs) either; `ops/purges` says what was
done; a purge killed midway resumes without rewriting a table twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from storage import ColumnNotFound, EntityNotFound, Store
from storage import purge as purge_mod
from storage.layout import PURGES, purge_app
from storage.ranking import ranked
from storage.records import from_ipc
from storage.writer import CrawlEvent
from tests.storage.conftest import Root, day

BAD = "bad-qz0"  # not hex: a table id (a UUID) can never hold it
# what the purged entity carried: none of it may survive anywhere on disk
SECRETS = [BAD, "evil/attack-model", "evil/renamed", "PAYLOAD-7f3a", "evil-author"]
TOPK_N = 3


def row(eid: str, name: str, dl: int, likes: int, **kw: Any) -> dict[str, Any]:
    return {"entity_id": eid, "name": name, "downloads": dl, "likes": likes, **kw}


def good(i: int, snap: int) -> dict[str, Any]:
    # counters move every snapshot, some attributes now and then
    return row(
        f"id{i}",
        f"org/m{i}",
        dl=100 * i + 7 * snap,
        likes=i * 3 + snap % 2,
        pipeline_tag="text" if (i + snap) % 3 else "image",
        author="org",
        observed_at=day(snap) - timedelta(minutes=i),  # observed/times holds them apart
    )


def bad(snap: int) -> dict[str, Any]:
    name = "evil/attack-model" if snap < 3 else "evil/renamed"
    # the best downloaded: in every top-k list, so the lists must be refilled
    return row(
        BAD,
        name,
        dl=10_000 + snap,
        likes=999,
        pipeline_tag="PAYLOAD-7f3a",
        author="evil-author",
        observed_at=day(snap) - timedelta(minutes=13),
    )


def build(store: Store) -> None:
    """Six hub:model snapshots: the bad entity renamed, gone in 4 (a tombstone), back in 5
    (a new incarnation), staged in a partial 6; cards, discussions, commits; events."""
    for snap in range(1, 6):
        rows = [good(i, snap) for i in range(1, 7) if not (i == 6 and snap == 2)]
        if snap != 4:
            rows.append(bad(snap))
        w = store.begin_snapshot("hub:model", as_of=day(snap))
        for seq, start in enumerate(range(0, len(rows), 3)):
            w.write_batch(seq, rows[start : start + 3])
        for eid in ([BAD] if snap != 4 else []) + ["id1", "id2"]:
            w.write_details(
                "cards",
                snap,
                [
                    {
                        "entity_id": eid,
                        "sha": f"{eid}-{snap}",
                        "length": 10,
                        "metadata_fields": ["license"],
                        "text_sample": "PAYLOAD-7f3a <script>x</script>" if eid == BAD else "ok",
                    }
                ],
            )
            w.write_details(
                "discussions", snap, [{"entity_id": eid, "num": 1, "title": f"t {eid}"}]
            )
            w.write_details(
                "commits", snap, [{"entity_id": eid, "commit_id": f"c{eid}{snap}", "title": "x"}]
            )
        w.record_events(
            [
                # a listing page naming several repos: only the bad record goes
                CrawlEvent(
                    "malformed",
                    "page had odd rows",
                    "http://127.0.0.1/api/models?p=1",
                    json.dumps(
                        [{"_id": BAD, "id": "evil/attack-model"}, {"_id": "id1", "id": "org/m1"}]
                    ),
                ),
                CrawlEvent(
                    "rejected",
                    f"batch 0: entity_id '{BAD}' is odd",
                    "http://127.0.0.1/api/models/evil/attack-model",
                    json.dumps({"_id": BAD, "cardData": "PAYLOAD-7f3a"}),
                ),
                CrawlEvent("retry", "HTTP 503", "http://127.0.0.1/api/models/org/m2", "{}"),
            ]
        )
        w.finish("complete")
    # the details backlog: which sha each repo's details were fetched at
    for entry in ("claim", "done"):
        store.mark_details(
            "hub:model",
            1,
            entry,
            5,
            [
                {"entity_id": eid, "name": nm, "detail": "cards", "sha": f"{eid}-5"}
                for eid, nm in ((BAD, "evil/renamed"), ("id1", "org/m1"))
            ],
        )
    w = store.begin_snapshot("hub:model", as_of=day(6))
    w.write_batch(0, [good(1, 6), bad(6)])
    w.write_batch(1, [good(2, 6)])
    w.finish("partial")


def reads(store: Store) -> dict[str, Any]:
    """Every read a user has, per snapshot: as-of (partial too), top-k, changes, history
    of every entity, the Hub details, the crawl events."""
    out: dict[str, Any] = {}
    snaps = store.snapshots("hub:model", include_partial=True)
    for sid, status in snaps.select("snapshot_id", "status").rows():
        out[f"asof {sid}"] = (
            store.as_of("hub:model", sid, include_partial=True).collect().sort("entity_id")
        )
        if status == "complete":
            for by in ("downloads", "likes", "downloads_all_time"):
                out[f"top {sid} {by}"] = store.top_k("hub:model", sid, by, TOPK_N).collect()
    ids = store.snapshots("hub:model")["snapshot_id"].to_list()
    for a, b in itertools.pairwise(ids):
        out[f"changed {a} {b}"] = store.changed("hub:model", a, b).collect()
    for i in range(1, 7):
        out[f"history id{i}"] = store.history("hub:model", f"id{i}").collect()
    for sid in ids:
        out[f"cards {sid}"] = store.cards("model", at=sid).collect().sort("entity_id")
        out[f"discussions {sid}"] = store.discussions("model", at=sid).collect().sort("entity_id")
    out["commits"] = store.commits("model").collect().sort("commit_id")
    out["events"] = store.events().collect()
    return out


def rows_of_bad(store: Store) -> dict[str, int]:
    """The rows of the bad entity (all its keys) in the change-encoded tables and top-k."""
    uri = store._core.tables.uri
    attrs = pl.scan_delta(DeltaTable(uri("hub/repos"))).filter(pl.col("entity_id") == BAD)
    keys = set(attrs.select("entity_key").collect()["entity_key"].to_list())
    if not keys:  # purged: its keys as they were
        keys = KEYS
    KEYS.update(keys)
    out = {"hub/repos": attrs.select(pl.len()).collect().item()}
    backlog = pl.scan_delta(DeltaTable(uri("ops/detail_backlog")))
    out["ops/detail_backlog"] = backlog.filter(pl.col("entity_id") == BAD).collect().height
    for rel in ("hub/repo_counters", "derived/topk", "observed/times"):
        lf = pl.scan_delta(DeltaTable(uri(rel))).filter(pl.col("entity_key").is_in(list(keys)))
        out[rel] = lf.select(pl.len()).collect().item()
    return out


KEYS: set[int] = set()


def without_bad(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("entity_id") != BAD) if "entity_id" in df.columns else df


def disk_text(root: Path, skip: str | None = None) -> str:
    """Everything the store's folder holds, as text: log entries raw, every Parquet file
    on disk (live or not, checkpoints included) decoded, staged blobs decoded too."""
    parts = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or (skip and path.relative_to(root).as_posix().startswith(skip)):
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            if "payload" in table.column_names and table.schema.field("payload").type == (
                pa.large_binary()
            ):
                for blob in table.column("payload").to_pylist():
                    parts.append(json.dumps(from_ipc(blob).to_pylist(), default=str))
                table = table.drop_columns(["payload"])
            parts.append(json.dumps(table.to_pylist(), default=str))
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
def built(tmp_path: Path) -> Store:
    store = Store.open(str(tmp_path / "store"), keyframe_every=2, topk_n=TOPK_N)
    build(store)
    store.wait_for_tidying()
    return store


def test_purge_takes_the_entity_out_and_changes_nothing_else(built: Store, tmp_path: Path) -> None:
    store = built
    root = tmp_path / "store"
    before = reads(store)
    assert all(s in disk_text(root) for s in SECRETS)  # the check below can fail
    assert BAD in before["asof 5"]["entity_id"].to_list()
    assert before["top 1 downloads"]["entity_id"][0] == BAD

    held = rows_of_bad(store)
    assert all(held.values()), held  # each table holds some of it: the check can fail
    report = store.purge("hub:model", BAD, reason="takedown: attack payload in cardData")
    assert rows_of_bad(store) == dict.fromkeys(held, 0)

    after = reads(store)
    assert after.keys() == before.keys()
    for what, old in before.items():
        new = after[what]
        if what.startswith("top "):
            # the list is what it would have been had the entity never been listed: the
            # next entity moved up into the k-th place
            sid, by = int(what.split()[1]), what.split()[2]
            state = before[f"asof {sid}"].filter(pl.col("entity_id") != BAD)
            want = ranked(state, by, TOPK_N).select("rank", "entity_id", "name", "value")
            assert new.equals(want), what
            assert BAD not in new["entity_id"].to_list()
        elif what == "events":
            assert new.height == old.height  # events stay, their bad parts go
            assert new.filter(pl.col("kind") == "retry").equals(
                old.filter(pl.col("kind") == "retry")
            )
            pages = new.filter(pl.col("kind") == "malformed")["payload"].to_list()
            assert all(json.loads(p) == [{"_id": "id1", "id": "org/m1"}] for p in pages)
            rejected = new.filter(pl.col("kind") == "rejected")
            assert rejected["payload"].null_count() == rejected.height
            assert rejected["url"].null_count() == rejected.height
            assert rejected["reason"].to_list()[0] == "batch 0: entity_id '[purged]' is odd"
        else:
            assert new.equals(without_bad(old)), what
            if "entity_id" in old.columns and not what.startswith("history"):
                assert old.height > new.height or BAD not in old["entity_id"].to_list(), what
    with pytest.raises(EntityNotFound):
        store.resolve_entity("hub:model", BAD)
    assert store.history("hub:model", BAD).collect().is_empty()
    assert store.named("hub:model", "evil/renamed").is_empty()

    assert report.rows["hub/cards"] == 4
    assert report.rows["hub/discussions"] == 4
    assert report.rows["hub/commits"] == 4
    assert report.rows["staging/batches"] == 1
    assert report.rows["ops/crawl_events"] == 10
    assert report.rows["hub/repos"] == held["hub/repos"] >= 4  # 2 upserts, a tombstone, 1 more
    assert report.rows["hub/repo_counters"] == held["hub/repo_counters"] >= 4
    assert report.rows["derived/topk"] == held["derived/topk"] >= 4

    text = disk_text(root, skip="ops/purges")
    for secret in SECRETS:
        assert secret not in text, secret
    # the audit trail names the id it purged, and nothing else of it
    audit_text = disk_text(root / "ops" / "purges")
    assert BAD in audit_text and not any(s in audit_text for s in SECRETS[1:])
    # the audit row: when, what, why, rows per table
    audit = store.purges()
    assert audit.height == 1
    a = audit.row(0, named=True)
    assert (a["status"], a["source"], a["entity_id"], a["field"]) == (
        "done",
        "hub:model",
        BAD,
        None,
    )
    assert a["reason"] == "takedown: attack payload in cardData"
    assert a["rows"] == report.total
    assert "hub/repos: " in a["tables"] and "ops/crawl_events: 10" in a["tables"]
    assert PURGES in store.table_names()

    # the store goes on: the next crawl sees the entity again as a new one
    w = store.begin_snapshot("hub:model", as_of=day(7))
    w.write_batch(0, [good(i, 7) for i in range(1, 7)] + [bad(7)])
    w.finish("complete")
    s7 = store.as_of("hub:model", columns=["downloads"]).collect().sort("entity_id")
    assert s7.height == 7 and store.history("hub:model", BAD).collect()["op"].to_list() == [
        "upsert"
    ]


def test_a_field_purge_nulls_one_column_only(built: Store, tmp_path: Path) -> None:
    store = built
    before = reads(store)
    report = store.purge("hub:model", BAD, field="pipeline_tag", reason="payload in a tag")
    after = reads(store)
    for what, old in before.items():
        new = after[what]
        if "pipeline_tag" in old.columns and BAD in old["entity_id"].to_list():
            bad_old = old.filter(pl.col("entity_id") == BAD)
            bad_new = new.filter(pl.col("entity_id") == BAD)
            assert bad_new["pipeline_tag"].null_count() == bad_new.height, what
            assert bad_new.drop("pipeline_tag").equals(bad_old.drop("pipeline_tag")), what
            assert without_bad(new).equals(without_bad(old)), what
        elif what == "events":
            named = new.filter(pl.col("kind") != "retry")
            assert named["payload"].null_count() == named.height  # raw records: dropped whole
            assert new.drop("payload").equals(old.drop("payload"))
        else:
            assert new.equals(old), what
    # the three upserts that carried it (a tombstone has none), and the staged row
    assert report.rows["hub/repos"] == 3 and report.rows["staging/batches"] == 1
    assert report.rows["hub/repo_counters"] == 0
    assert report.rows["derived/topk"] == 0 and report.rows["hub/cards"] == 0
    assert "PAYLOAD-7f3a" not in json.dumps(
        [
            store.as_of("hub:model", s, include_partial=True).collect().to_dicts()
            for s in range(1, 7)
        ],
        default=str,
    )
    # a card's text is a field too; a key column is not
    store.purge("hub:model", BAD, field="text_sample", reason="attack payload")
    assert (
        store.cards("model")
        .collect()
        .filter(pl.col("entity_id") == BAD)["text_sample"]
        .null_count()
        == 1
    )
    assert "PAYLOAD-7f3a" not in disk_text(tmp_path / "store")
    with pytest.raises(ColumnNotFound, match="key column"):
        store.purge("hub:model", BAD, field="entity_id", reason="x")
    with pytest.raises(ColumnNotFound, match="no table of 'hub:model' has that column"):
        store.purge("hub:model", BAD, field="nope", reason="x")
    assert store.purges()["field"].to_list() == ["pipeline_tag", "text_sample"]


def test_a_killed_purge_resumes_without_rewriting_a_table_twice(
    built: Store, tmp_path: Path
) -> None:
    store = built
    core = store._core
    before = reads(store)
    target = purge_mod._target(core, "hub:model", BAD, None)
    steps = purge_mod.steps("hub:model")
    # a purge killed after three tables were recorded, and a fourth rewritten (its
    # commit landed) but not yet recorded in ops/purges
    purge_mod._ensure_purges(core)
    pid = purge_mod._begin(core, target, "takedown")
    app = purge_app(pid)
    for i, rel in enumerate(steps[:3]):
        n, files = purge_mod._run_step(core, rel, target, pid, app)
        purge_mod._record(
            core, target, "takedown", pid, i + 1, "table", table=rel, rows=n, files=files
        )
    landed = purge_mod._run_step(core, steps[3], target, pid, app)
    assert landed[0] > 0
    version = {
        rel: DeltaTable(core.tables.uri(rel)).version() for rel in steps if core.tables.exists(rel)
    }
    assert store.purges()["status"].to_list() == ["running"]

    report = store.purge("hub:model", BAD, reason="takedown")
    assert report.resumed and report.purge_id == pid
    assert report.rows[steps[3]] == landed[0]  # from the landed commit, not redone
    for rel in steps[:4]:
        dt = DeltaTable(core.tables.uri(rel))
        # not rewritten again: only the log scrub's checkpoint (no new commit) happened
        assert dt.version() == version[rel], rel
    after = reads(store)
    for what in ("asof 3", "asof 6", "history id2", "cards 5", "commits"):
        assert after[what].equals(without_bad(before[what])), what
    audit = store.purges()
    assert audit["status"].to_list() == ["done"] and audit["rows"][0] == report.total
    # the tables the killed run rewrote lost their old files and log entries too
    text = disk_text(tmp_path / "store", skip="ops/purges")
    assert not any(s in text for s in SECRETS)
    # run once more: a new purge that finds nothing
    with pytest.raises(EntityNotFound, match="nothing to purge"):
        store.purge("hub:model", BAD, reason="again")
    assert store.purges().height == 1


def test_refusals_write_nothing(built: Store) -> None:
    store = built
    with pytest.raises(ValueError, match="needs a reason"):
        store.purge("hub:model", BAD, reason="  ")
    with pytest.raises(EntityNotFound, match="nothing to purge"):
        store.purge("hub:model", "no-such-id", reason="x")
    dry = store.purge("hub:model", BAD, reason="x", dry_run=True)
    assert dry.dry_run and dry.rows["hub/cards"] == 4 and dry.purge_id is None
    assert store.purges().is_empty() and PURGES not in store.table_names()
    assert BAD in store.as_of("hub:model").collect()["entity_id"].to_list()
    store.purge("hub:model", BAD, field="pipeline_tag", reason="x")
    with pytest.raises(EntityNotFound, match=r"field 'pipeline_tag' of 'bad-qz0'.* with a value"):
        store.purge("hub:model", BAD, field="pipeline_tag", reason="again")
    assert store.purges()["purge_id"].to_list() == [1]


def test_the_cli_purges_by_name_and_lists_the_audit_trail(built: Store, tmp_path: Path) -> None:
    from tests.storage.test_cli_store import hub

    root = tmp_path / "store"
    dry = hub(
        root, "purge", "hub:model", "evil/renamed", "--reason", "x", "--dry-run", "-f", "json"
    )
    assert dry.returncode == 0, dry.stderr
    assert f"'evil/renamed' is the name of {BAD}" in dry.stderr
    assert {r["table"]: r["rows"] for r in json.loads(dry.stdout)}["hub/cards"] == 4
    refused = hub(root, "purge", "hub:model", BAD, "--reason", "")
    assert refused.returncode == 1 and "needs a reason" in refused.stderr
    unknown = hub(root, "purge", "hub:model", BAD, "--reason", "x", "--field", "nope")
    assert unknown.returncode == 1 and "--field 'nope': no table of 'hub:model'" in unknown.stderr
    assert hub(root, "purges", "-f", "json").stdout.strip() == "[]"

    done = hub(root, "purge", "hub:model", "evil/renamed", "--reason", "takedown 2026-08")
    assert done.returncode == 0, done.stderr
    assert f"purge 1: {BAD} of hub:model" in " ".join(done.stdout.split())
    audit = json.loads(hub(root, "purges", "-f", "json").stdout)
    assert [(a["purge_id"], a["status"], a["entity_id"], a["reason"]) for a in audit] == [
        (1, "done", BAD, "takedown 2026-08")
    ]
    assert "hub/repos: " in audit[0]["tables"] and audit[0]["rows"] > 20
    # the source is free again (the purge held its lease) and the entity is gone
    assert store_ids(Store.open(str(root))) == {f"id{i}" for i in range(1, 7)}
    gone = hub(root, "purge", "hub:model", BAD, "--reason", "again")
    assert gone.returncode == 1 and "nothing to purge" in gone.stderr


def store_ids(store: Store) -> set[str]:
    return set(store.as_of("hub:model").collect()["entity_id"].to_list())


def test_a_custom_source_keeps_every_other_row(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"), keyframe_every=2)
    for snap in range(1, 5):
        rows = [
            {"entity_id": f"p{i}", "title": f"t{i}-{snap // 2}", "n": i * snap} for i in range(5)
        ]
        rows.append({"entity_id": "doi:evil", "title": "<script>alert(1)</script>", "n": snap})
        w = store.begin_snapshot("custom:papers", as_of=day(snap))
        w.write_batch(0, rows)
        w.finish("complete")
    before = {s: store.as_of("custom:papers", s).collect().sort("entity_id") for s in range(1, 5)}
    report = store.purge("custom:papers", "doi:evil", reason="spam")
    assert report.rows["custom/papers"] >= 2 and set(report.rows) == {
        "ops/crawl_events",
        "staging/batches",
        "derived/measures",  # steps whatever the source; this store has none of them
        "observed/times",
        "custom/papers",
    }
    for s, old in before.items():
        new = store.as_of("custom:papers", s).collect().sort("entity_id")
        assert new.equals(old.filter(pl.col("entity_id") != "doi:evil")), s
    assert "alert(1)" not in disk_text(tmp_path / "store")


def test_purge_on_every_root(root: Root) -> None:
    # on a folder and on `s3://` (the s3 variant is slow): removed files and old log
    # entries are deleted through the object store too
    store = root.open(keyframe_every=2, topk_n=TOPK_N)
    build(store)
    store.wait_for_tidying()
    before = reads(store)
    report = store.purge("hub:model", BAD, reason="takedown")
    after = reads(store)
    for what in ("asof 2", "asof 5", "asof 6", "history id3", "cards 5", "commits"):
        assert after[what].equals(without_bad(before[what])), what
    assert report.files["hub/repos"] >= 1 and store.purges()["status"].to_list() == ["done"]
    for rel in ("hub/repos", "hub/repo_counters", "derived/topk"):
        dt = DeltaTable(store._core.tables.uri(rel), storage_options=store.storage_options)
        live = set(dt.file_uris())
        fs = purge_mod._fs(store._core, dt)
        on_disk = {
            i.path
            for i in fs.get_file_info(pafs.FileSelector("", recursive=True))
            if i.path.endswith(".parquet") and not i.path.startswith("_delta_log")
        }
        # every data file left is live: the rewritten ones are gone
        assert len(on_disk) == len(live), rel
        versions = [h["version"] for h in dt.history()]
        assert min(versions) > 0, rel  # the log before the purge's checkpoint is gone


def test_a_registry_top_listing_loses_the_member_only(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"), topk_n=2)
    pkgs = ["left-pad", "evil-pkg", "lodash", "react"]
    for snap in range(1, 4):
        w = store.begin_snapshot(
            "npm",
            as_of=day(snap),
            coverage="top" if snap == 2 else "full",
            top_by="downloads" if snap == 2 else None,
        )
        rows = [
            {
                "entity_id": p,
                "name": p,
                "downloads": 10 * i + snap + (100 if p == "evil-pkg" else 0),
            }
            for i, p in enumerate(pkgs)
            if snap != 2 or i < 3
        ]
        w.write_batch(0, rows)
        w.finish("complete")
    before = {s: store.as_of("npm", s).collect().sort("entity_id") for s in (1, 2, 3)}
    tops = {s: store.top_k("npm", s, "downloads", 2).collect() for s in (1, 2, 3)}
    assert all(t["entity_id"][0] == "evil-pkg" for t in tops.values())
    report = store.purge("npm", "evil-pkg", reason="malware")
    assert report.rows["registry/packages"] >= 1 and report.rows["registry/package_counters"] >= 3
    for s, old in before.items():
        new = store.as_of("npm", s).collect().sort("entity_id")
        assert new.equals(old.filter(pl.col("entity_id") != "evil-pkg")), s
        want = ranked(new, "downloads", 2).select("rank", "entity_id", "name", "value")
        assert store.top_k("npm", s, "downloads", 2).collect().equals(want), s
    assert store.snapshot_info("npm", 2).coverage == "top"


@pytest.mark.slow
def test_a_purge_sigkilled_at_random_instants_resumes(tmp_path: Path) -> None:
    import random
    import subprocess
    import sys
    import time

    rng = random.Random(16)
    opening = (
        "import sys; from storage import Store; "
        "store = Store.open(sys.argv[1], keyframe_every=2, topk_n=3)"
    )
    script = opening + "; store.purge('hub:model', sys.argv[2], reason='takedown')"

    def seconds_to_run(code: str, root: Path) -> float:
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", code, str(root), BAD], check=True)
        return time.monotonic() - started

    # The kills fall between the store being open and the purge being done, as
    # measured on this machine: fixed instants miss the purge on a fast one.
    calibration = tmp_path / "calibration"
    build(Store.open(str(calibration), keyframe_every=2, topk_n=TOPK_N))
    opened = seconds_to_run(opening, calibration)
    purged = seconds_to_run(script, calibration)
    assert purged > opened
    kills = mid_purge = 0
    for attempt in range(12):
        if kills >= 4:
            break
        root = tmp_path / f"s{attempt}"
        store = Store.open(str(root), keyframe_every=2, topk_n=TOPK_N)
        build(store)
        store.wait_for_tidying()
        before = reads(store)
        proc = subprocess.Popen([sys.executable, "-c", script, str(root), BAD])
        time.sleep(rng.uniform(opened, opened + 0.9 * (purged - opened)))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        store = Store.open(str(root), keyframe_every=2, topk_n=TOPK_N)
        mid_purge += store.purges()["status"].to_list() == ["running"]
        with contextlib.suppress(EntityNotFound):  # the killed run had finished
            store.purge("hub:model", BAD, reason="takedown")
        after = reads(store)
        for what in ("asof 1", "asof 4", "asof 6", "history id1", "cards 3", "commits"):
            assert after[what].equals(without_bad(before[what])), (attempt, what)
        assert store.purges()["status"].to_list() == ["done"], attempt
        text = disk_text(root, skip="ops/purges")
        assert not [s for s in SECRETS if s in text], attempt
    assert kills >= 3, (kills, opened, purged)
    assert mid_purge >= 2, (mid_purge, kills)  # some kills left a purge half done


def test_a_counter_field_purge_reranks_that_column_only(built: Store) -> None:
    store = built
    before = reads(store)
    report = store.purge("hub:model", BAD, field="downloads", reason="fake downloads")
    assert report.rows["hub/repo_counters"] == 4 and report.rows["hub/repos"] == 0
    assert report.rows["derived/topk"] > 0  # its downloads memberships
    after = reads(store)
    for sid in (1, 2, 3, 5):
        state = after[f"asof {sid}"]
        old = before[f"asof {sid}"]
        assert state.filter(pl.col("entity_id") == BAD)["downloads"].to_list() == [None]
        assert state.drop("downloads").equals(old.drop("downloads"))
        assert without_bad(state).equals(without_bad(old))
        want = ranked(state, "downloads", TOPK_N).select("rank", "entity_id", "name", "value")
        assert after[f"top {sid} downloads"].equals(want), sid
        assert BAD not in want["entity_id"].to_list()
        assert after[f"top {sid} likes"].equals(before[f"top {sid} likes"]), sid
        assert after[f"top {sid} likes"]["entity_id"][0] == BAD


def test_a_purge_drops_the_sources_stored_results_and_they_can_be_stored_again(
    built: Store,
) -> None:
    # every measure result of the source counted the entity: all go; `analyze` stores them
    # again under new keys (a key's txn would otherwise say "already written")
    from storage.derived import MEASURES, DerivedFrame

    def result(source: str, n: int) -> DerivedFrame:
        return DerivedFrame(source, 5, "growth", 1, "p", pl.DataFrame({"n": [n]}))

    assert built.write_derived(MEASURES, [result("hub:model", 7), result("npm", 3)]) == 2
    report = built.purge("hub:model", BAD, reason="takedown")
    assert report.rows["derived/measures"] == 1
    assert built.derived_index(MEASURES)["source"].to_list() == ["npm"]
    assert built.derived_stored(MEASURES, [result("hub:model", 6)]) == [False]
    assert built.write_derived(MEASURES, [result("hub:model", 6), result("npm", 3)]) == 1
    got = built.read_derived(MEASURES, result("hub:model", 0))
    assert got is not None and got.frame["n"].to_list() == [6]
    # a purge of an id the store never held finds nothing, the results notwithstanding
    with pytest.raises(EntityNotFound, match="nothing to purge"):
        built.purge("hub:model", "never-there", reason="x")

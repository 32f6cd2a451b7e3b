"""A small hand-made lineage world written through the store: four snapshots of hub:model
with edges added and removed, a rename, a name taken over, a deletion, a missing base, a
merge (two bases) and a cycle. tests/analytics/test_lineage.py holds the answers, computed
by hand from the tables below.

    snapshot 1: b org/base (100) <- f1 u/ft1 (10, finetune); x u/ext (1) -> google/outside
    snapshot 2: + a1 u/ad1 -> org/base (adapter), q1 u/q1 -> u/ft1 (quantized),
                c1 c/one <-> c2 c/two (a cycle), s u/self -> [u/self, org/base]
    snapshot 3: b renamed org/base-v2; a1 now declares org/base-v2, f1 and s still org/base;
                + m u/merge -> [u/ft1, u/ad1] (merge)
    snapshot 4: f1 deleted; x drops its base; + nb: a new org/base (takes the old name),
                k u/k -> org/base; so s (still declaring org/base) moves to nb's family
"""

from __future__ import annotations

from typing import Any

from storage import Store
from tests.analytics.world import day, hub, snapshot


def _m(
    eid: str, name: str, dl: int, bases: list[str] | None = None, rel: str | None = None
) -> dict[str, Any]:
    return hub(eid, name, downloads=dl, base_models=bases, base_model_relation=rel)


# per snapshot: the models written or changed (eid: (name, downloads, bases, relation))
# and the ones deleted; every other model carries on unchanged
Change = dict[str, tuple[str, int, list[str] | None, str | None]]
CHANGES: list[tuple[Change, tuple[str, ...]]] = [
    (
        {
            "b": ("org/base", 100, None, None),
            "f1": ("u/ft1", 10, ["org/base"], "finetune"),
            "x": ("u/ext", 1, ["google/outside"], "finetune"),
        },
        (),
    ),
    (
        {
            "b": ("org/base", 200, None, None),
            "f1": ("u/ft1", 20, ["org/base"], "finetune"),
            "x": ("u/ext", 2, ["google/outside"], "finetune"),
            "a1": ("u/ad1", 5, ["org/base"], "adapter"),
            "q1": ("u/q1", 3, ["u/ft1"], "quantized"),
            "c1": ("c/one", 7, ["c/two"], "finetune"),
            "c2": ("c/two", 8, ["c/one"], "finetune"),
            "s": ("u/self", 4, ["u/self", "org/base"], "finetune"),
        },
        (),
    ),
    (
        {
            "b": ("org/base-v2", 300, None, None),
            "f1": ("u/ft1", 30, ["org/base"], "finetune"),
            "x": ("u/ext", 3, ["google/outside"], "finetune"),
            "a1": ("u/ad1", 6, ["org/base-v2"], "adapter"),
            "q1": ("u/q1", 4, ["u/ft1"], "quantized"),
            "m": ("u/merge", 9, ["u/ft1", "u/ad1"], "merge"),
        },
        (),
    ),
    (
        {
            "b": ("org/base-v2", 400, None, None),
            "x": ("u/ext", 4, None, None),
            "a1": ("u/ad1", 7, ["org/base-v2"], "adapter"),
            "q1": ("u/q1", 5, ["u/ft1"], "quantized"),
            "m": ("u/merge", 10, ["u/ft1", "u/ad1"], "merge"),
            "nb": ("org/base", 50, None, None),
            "k": ("u/k", 1, ["org/base"], "finetune"),
        },
        ("f1",),
    ),
]


def states() -> list[list[dict[str, Any]]]:
    """The listing of each snapshot, in order."""
    alive: dict[str, dict[str, Any]] = {}
    out = []
    for changes, deleted in CHANGES:
        for eid, (name, dl, bases, rel) in changes.items():
            alive[eid] = hub(eid, name, downloads=dl, base_models=bases, base_model_relation=rel)
        for eid in deleted:
            del alive[eid]
        out.append([dict(r) for r in alive.values()])
    return out


def lineage_world(store: Store) -> Store:
    """Write the four snapshots (days 1-4) of hub:model into `store`."""
    for n, rows in enumerate(states(), start=1):
        snapshot(store, "hub:model", day(n), rows)
    return store

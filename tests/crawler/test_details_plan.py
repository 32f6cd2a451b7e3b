"""The detail plan's rule (`crawler.hub_details.plan_page`): the budget is respected,
commits of changed repos are always planned, the weighted draw is deterministic per
(entity, snapshot), and a heavier repo is refreshed more often."""

from __future__ import annotations

import random

from crawler.hub_details import (
    Candidate,
    DetailPlan,
    DiscussionStats,
    activity,
    discussion_pages,
    plan_page,
    race_key,
)


def cand(key: int, *, changed: bool = False, weight: float = 1.0, **kw: object) -> Candidate:
    base: dict[str, object] = {
        "key": key,
        "changed": changed,
        "card_now": False,
        "card_stale": False,
        "weight": weight,
        "discussion_pages": 1,
    }
    base.update(kw)
    return Candidate(**base)  # type: ignore[arg-type]


def cost(cands: list[Candidate], plans: list[DetailPlan]) -> int:
    return sum(
        int(p.commits) + int(p.card) + (c.discussion_pages if p.discussions else 0)
        for c, p in zip(cands, plans, strict=True)
    )


def page(rng: random.Random, n: int = 1000, share_changed: float = 0.02) -> list[Candidate]:
    return [
        cand(
            rng.getrandbits(64),
            changed=rng.random() < share_changed,
            weight=rng.uniform(0.2, 5.0),
            card_stale=rng.random() < 0.1,
            card_now=rng.random() < 0.001,
            discussion_pages=rng.choice([1, 1, 1, 2, 5]),
        )
        for _ in range(n)
    ]


def test_budget_respected_and_commits_always() -> None:
    rng = random.Random(3)
    carry = 0.0
    spent = changed = 0
    for sid in range(1, 6):
        for _ in range(20):
            cands = page(rng)
            plans, carry = plan_page(cands, budget=1.1, carry=carry, snapshot_id=sid)
            # every changed repo gets its commits, no unchanged one does
            assert [p.commits for p in plans] == [c.changed for c in cands]
            # a changed card is always read
            assert all(p.card for c, p in zip(cands, plans, strict=True) if c.card_now)
            spent += cost(cands, plans)
            changed += sum(c.changed for c in cands)
            # the carry is the exact balance: budget accrued minus requests planned
            assert abs(carry - (1.1 * changed - spent)) < 1e-6
            # a refresh is only bought from a positive balance (mandatory work alone may
            # run into debt, which later pages pay back first)
            if any(p.discussions for p in plans):
                assert carry >= 0
    assert changed > 1000
    assert spent <= 1.1 * changed
    # the leftover of each page is carried, so nearly the whole budget is used
    assert spent >= 1.1 * changed - 6, (spent, changed)


def test_mandatory_work_over_budget_becomes_debt() -> None:
    # every repo changed with a changed card: 2 requests each against 1.1 accrued
    cands = [cand(k, changed=True, card_now=True) for k in range(10)]
    plans, carry = plan_page(cands, budget=1.1, carry=0.0, snapshot_id=1)
    assert all(p.commits and p.card and not p.discussions for p in plans)
    assert carry == 11 - 20
    # the next page pays the debt back before refreshing anything
    more = [cand(100 + k, changed=k < 5, weight=3.0) for k in range(50)]
    plans2, carry2 = plan_page(more, budget=1.1, carry=carry, snapshot_id=1)
    assert not any(p.discussions for p in plans2)
    assert carry2 == -9 + 5.5 - 5


def test_budget_zero_extra_refreshes_nothing() -> None:
    cands = page(random.Random(5))
    plans, _ = plan_page(cands, budget=1.0, carry=0.0, snapshot_id=4)
    mandatory = sum(c.changed for c in cands) + sum(c.card_now for c in cands)
    assert cost(cands, plans) == mandatory


def test_rotation_due_refreshed_whatever_the_budget() -> None:
    cands = [cand(k, due=k % 3 == 0, card_stale=True) for k in range(30)]
    plans, carry = plan_page(cands, budget=1.1, carry=0.0, snapshot_id=2)
    assert [p.discussions for p in plans] == [k % 3 == 0 for k in range(30)]
    assert [p.card for p in plans] == [k % 3 == 0 for k in range(30)]
    assert carry == -20


def test_weighted_draw_is_deterministic() -> None:
    rng = random.Random(7)
    cands = page(rng)
    a, ca = plan_page(cands, budget=3.0, carry=0.5, snapshot_id=9)
    b, cb = plan_page(list(cands), budget=3.0, carry=0.5, snapshot_id=9)
    assert a == b and ca == cb
    assert sum(p.discussions for p in a) > 0
    # another snapshot draws other repos
    c, _ = plan_page(cands, budget=3.0, carry=0.5, snapshot_id=10)
    assert c != a
    assert race_key(123, 9, 2.0, 1) == race_key(123, 9, 2.0, 1)


def test_heavier_repos_refreshed_more_often() -> None:
    # 500 repos of weight 1 and 500 of weight 4 (alternating), 10 changed; over 200
    # snapshots the heavy ones must be drawn about 4x as often
    heavy = light = 0
    cands = [
        cand(random.Random(k).getrandbits(64), changed=k < 10, weight=4.0 if k % 2 else 1.0)
        for k in range(1000)
    ]
    for sid in range(200):
        plans, _ = plan_page(cands, budget=3.0, carry=0.0, snapshot_id=sid)
        for k, p in enumerate(plans):
            if p.discussions:
                if k % 2:
                    heavy += 1
                else:
                    light += 1
    assert heavy + light == 200 * 20  # 3.0 x 10 changed - 10 commits = 20 refreshes each
    assert 3.0 < heavy / light < 5.5, (heavy, light)


def test_cost_per_request_counts() -> None:
    # same weight, one repo's discussions take 5 pages: it is drawn less often
    cheap = costly = 0
    cands = [
        cand(random.Random(k).getrandbits(64), weight=1.0, discussion_pages=5 if k % 2 else 1)
        for k in range(400)
    ] + [cand(10**6 + k, changed=True) for k in range(10)]
    for sid in range(100):
        plans, _ = plan_page(cands, budget=2.0, carry=0.0, snapshot_id=sid)
        for k, p in enumerate(plans[:400]):
            if p.discussions:
                if k % 2:
                    costly += 1
                else:
                    cheap += 1
    assert cheap > 3 * costly > 0


def test_activity_and_pages() -> None:
    quiet = activity({"downloads": 0, "likes": 0}, 0, 0, False)
    popular = activity({"downloads": 10**6, "likes": 500}, 0, 0, False)
    with_open = activity({"downloads": 0, "likes": 0}, 4, 3, False)
    assert popular > 3 * quiet and with_open > 3 * quiet
    assert activity({"downloads": None, "likes": None}, 0, 0, True) == 2 * quiet
    assert [discussion_pages(n) for n in (0, 1, 50, 51, 120)] == [1, 1, 1, 2, 3]
    assert DiscussionStats.empty().lookup(5) == (0, 0)

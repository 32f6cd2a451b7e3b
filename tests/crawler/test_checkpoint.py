"""The checkpoint a batch is committed with: what a resumed crawl goes on from."""

from __future__ import annotations

from crawler.pipeline import Checkpoint, decode_checkpoint, encode_checkpoint


def test_checkpoint_round_trip_keeps_the_detail_budget_balance() -> None:
    cp = Checkpoint("http://127.0.0.1:1/api/models?cursor=x", 7, ["page 3: HTTP 500"], -1.25)
    assert decode_checkpoint(encode_checkpoint(cp)) == cp


def test_listing_end_and_older_checkpoints() -> None:
    end = Checkpoint(None, 12, [], 3.5)
    assert decode_checkpoint(encode_checkpoint(end)) == end
    # written before the balance was saved: the balance restarts at 0
    old = decode_checkpoint('{"next": "u", "page": 2, "failures": []}')
    assert old == Checkpoint("u", 2, [], 0.0)


def test_unreadable_checkpoints_are_none() -> None:
    for text in (None, "", "not json", "[1, 2]", '{"page": "x"}'):
        assert decode_checkpoint(text) is None, text

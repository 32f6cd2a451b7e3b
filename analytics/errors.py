"""Errors of the analytics package."""

from __future__ import annotations


class NotEnoughData(ValueError):
    """A measure cannot be computed from what the store holds (too few snapshots, no details)."""

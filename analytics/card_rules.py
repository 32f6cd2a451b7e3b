"""The ONE rule set for model-card documentation quality (paper A, M4).

Sections are detected from the card's markdown headings first, then from heading-like or
bold-label lines in its text sample. Each of the five sections paper A scores has a list
of patterns, matched case-insensitively; edit them here and only here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# section -> patterns matched against a heading (or a heading-like line of the text)
SECTION_PATTERNS: dict[str, tuple[str, ...]] = {
    "description": (
        r"model (description|details|summary|card)",
        r"^description",
        r"^overview",
        r"^about",
        r"^introduction",
        r"^summary",
    ),
    "limitations": (
        r"limitation",
        r"\bbias",
        r"\brisks?\b",
        r"out[- ]of[- ]scope",
        r"intended uses? (&|and) limitations",
        r"ethical",
    ),
    "how_to_use": (
        r"how to (use|get started)",
        r"^usage",
        r"^uses?\b",
        r"quick ?start",
        r"getting started",
        r"^inference",
        r"^example",
        r"intended uses?",
    ),
    "training": (
        r"^training",
        r"training (data|procedure|details|hyperparameters)",
        r"fine[- ]?tuning",
        r"^data\b",
        r"^dataset",
    ),
    "evaluation": (
        r"^evaluation",
        r"^results",
        r"^metrics",
        r"^benchmark",
        r"^performance",
        r"eval(uation)? results",
    ),
}
SECTIONS: tuple[str, ...] = tuple(SECTION_PATTERNS)

# metadata fields considered for availability (card front-matter keys)
METADATA_FIELDS: tuple[str, ...] = (
    "license", "language", "datasets", "metrics", "base_model", "pipeline_tag", "tags",
    "model-index", "library_name",
)  # fmt: skip

_COMPILED = {s: [re.compile(p, re.IGNORECASE) for p in ps] for s, ps in SECTION_PATTERNS.items()}
_HEADING_LINE = re.compile(
    r"^\s{0,3}(#{1,6}\s+(?P<h>.+?)\s*#*\s*$|\*\*(?P<b>[^*]{2,60})\*\*\s*:?\s*$)"
)


def _clean(heading: str) -> str:
    return re.sub(r"[*_`#:\[\]]", "", heading).strip()


def headings_of(headings: Iterable[str] | None, text: str | None) -> list[str]:
    """The card's headings plus heading-like lines of its text sample, cleaned."""
    out = [_clean(h) for h in (headings or []) if h]
    for line in (text or "").splitlines():
        m = _HEADING_LINE.match(line)
        if m:
            out.append(_clean(m.group("h") or m.group("b") or ""))
    return out


def sections_present(headings: Iterable[str] | None, text: str | None) -> list[str]:
    """Which of SECTIONS the card has, in SECTIONS order."""
    hs = headings_of(headings, text)
    return [s for s in SECTIONS if any(p.search(h) for p in _COMPILED[s] for h in hs)]


def metadata_present(fields: Iterable[str] | None) -> list[str]:
    """Which of METADATA_FIELDS the card declares (keys compared case-insensitively)."""
    have = {f.lower().replace("_", "-") for f in (fields or [])}
    return [f for f in METADATA_FIELDS if f.lower().replace("_", "-") in have]

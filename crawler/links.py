"""Link headers: the next-page URL, used as is (it carries every query parameter)."""

from __future__ import annotations

import re

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def next_link(header: str | bytes | None) -> str | None:
    """The `rel="next"` URL of a Link header, or None."""
    if header is None:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    for url, rel in _LINK.findall(text):
        if "next" in rel.split():
            return url
    return None

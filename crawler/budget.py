"""One request budget per service (Hub API, Hub resolvers, ecosyste.ms, ...), shared by every
crawl in the process, so concurrent crawls of several Hub sources together stay under the
Hub's quota.

A rolling window: at most `quota` sends in any `window` seconds (so any fixed window the
server counts in sees at most `quota`), plus what the server says: after a `RateLimit:
"api";r=0;t=N` answer nothing is sent until the server's window resets (N is whole
seconds, rounded, so half a second is added), and a `RateLimit-Policy: ...;q=Q;w=W`
stricter than the configured quota replaces it. No asyncio primitives (a reservation is
plain arithmetic on the loop's thread), so one budget survives several event loops (tests).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

_RATELIMIT = re.compile(r'"?([A-Za-z_-]+)"?\s*;\s*r=(\d+)\s*;\s*t=(\d+)')
_POLICY_Q = re.compile(r"\bq=(\d+)")
_POLICY_W = re.compile(r"\bw=(\d+(?:\.\d+)?)")
ROUNDING = 0.5  # the server's `t` is whole seconds, rounded
SERVER_MARGIN = 0.05  # after the server's own window end (same clock as our answers)


@dataclass
class Budget:
    """`quota` requests per rolling `window` seconds; `margin` guards the server's clock."""

    quota: int
    window: float
    margin: float = 0.0
    _sent: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    waited: float = 0.0  # seconds requests spent waiting for a slot (for the bench)
    server_window_end: float = 0.0  # latest bound on the server's current window's end
    first_sent: float | None = None  # slots of the first and last request (for the bench)
    last_sent: float = 0.0
    sent: int = 0  # requests that took a slot (tests and benches check the routing with it)

    def __post_init__(self) -> None:
        if self.margin == 0.0:
            # the server's window starts when our first request *arrives*; leave it a bit
            self.margin = min(2.0, max(0.05, self.window * 0.02))

    def reserve(self, now: float | None = None) -> float:
        """Take the next slot; returns seconds to wait before sending."""
        now = time.monotonic() if now is None else now
        slot = max(now, self.blocked_until)
        if len(self._sent) >= self.quota:
            slot = max(slot, self._sent[0] + self.window + self.margin)
            self._sent.popleft()
        self._sent.append(slot)
        self.sent += 1
        if self.first_sent is None:
            self.first_sent = slot
        self.last_sent = max(self.last_sent, slot)
        wait = slot - now
        self.waited += wait
        return wait

    def block_for(self, seconds: float, now: float | None = None) -> None:
        """The server said: nothing more for `seconds`."""
        now = time.monotonic() if now is None else now
        self.blocked_until = max(self.blocked_until, now + seconds + self.margin)

    def hold(self, now: float | None = None) -> float:
        """Seconds still blocked by the server (checked again just before sending: a block
        may have come in while a request waited for its slot)."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.blocked_until - now)

    def observe(
        self,
        remaining: int,
        reset: float,
        policy: tuple[int, float] | None = None,
        now: float | None = None,
    ) -> None:
        """What a response's `RateLimit` (and `RateLimit-Policy`) headers say; `now` is
        when the response came in."""
        now = time.monotonic() if now is None else now
        if policy is not None:
            q, w = policy
            # adopt a stricter server policy (fewer requests per second than configured)
            if q > 0 and w > 0 and q / w < self.quota / self.window:
                self.quota, self.window = q, w
                self.margin = min(2.0, max(0.05, w * 0.02))
            if remaining == q - 1:
                # the first request of a fresh server window: the window began before this
                # answer came in, so it ends before now + w (tighter than the rounded `t`)
                self.server_window_end = now + w
        if remaining == 0:
            until = now + reset + ROUNDING
            if now < self.server_window_end < until:
                until = self.server_window_end
            self.blocked_until = max(self.blocked_until, until + SERVER_MARGIN)


def hub_bucket(path: str) -> str:
    """The Hub quota bucket a Hub URL path spends: `/api/...` api, `.../resolve/...`
    resolvers (README cards, files), any other path (HTML pages) pages."""
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return "pages"


def parse_policy(value: str | None) -> tuple[int, float] | None:
    """`"fixed window";"api";q=1000;w=300` -> (1000, 300.0); None when unreadable."""
    if not value:
        return None
    q, w = _POLICY_Q.search(value), _POLICY_W.search(value)
    if not q or not w:
        return None
    return int(q.group(1)), float(w.group(1))


def parse_ratelimit(value: str | None) -> tuple[str, int, int] | None:
    """`"api";r=12;t=30` -> ("api", 12, 30); None when absent or unreadable."""
    if not value:
        return None
    m = _RATELIMIT.search(value)
    if not m:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3))


_BUDGETS: dict[tuple[str, str], tuple[tuple[int, float], Budget]] = {}


def budget_for(service: str, host: str, quota: int, window: float) -> Budget:
    """The process-wide budget of (service, host); new when the configured size changes
    (a size adopted from the server's policy stays)."""
    key = (service, host)
    got = _BUDGETS.get(key)
    if got is None or got[0] != (quota, window):
        got = ((quota, window), Budget(quota, window))
        _BUDGETS[key] = got
    return got[1]


def budgets() -> dict[tuple[str, str], Budget]:
    """Every budget in use, by (service, host) (benches read their counters)."""
    return {k: b for k, (_conf, b) in _BUDGETS.items()}


def reset_budgets() -> None:
    """Forget every budget (tests, benches)."""
    _BUDGETS.clear()


# Hub listings running in this process, by host. A details drain yields the quota to them
# between its batches (crawler/backlog.py): a listing snapshot is what a day's history
# waits for, details are the backlog behind it.
_LISTINGS: dict[str, int] = {}
_LISTINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def listing_running(host: str) -> Iterator[None]:
    """Mark a Hub listing of `host` as running for the duration of the block."""
    with _LISTINGS_LOCK:
        _LISTINGS[host] = _LISTINGS.get(host, 0) + 1
    try:
        yield
    finally:
        with _LISTINGS_LOCK:
            _LISTINGS[host] -= 1
            if not _LISTINGS[host]:
                del _LISTINGS[host]


def listings_running(host: str) -> int:
    """How many Hub listings of `host` run in this process now."""
    with _LISTINGS_LOCK:
        return _LISTINGS.get(host, 0)

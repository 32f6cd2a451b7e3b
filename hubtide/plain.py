"""What a user sees when the system under a command fails: one line naming the cause.

`cause_of(exc)` turns the errors a user's machine gives (a port in use, a read-only or full
disk, an unreachable host) into one line, wherever in the exception's chain (or its text:
deltalake reports an OS error inside its own message) they sit. `hide_rust_panics()`
routes file descriptor 2 through a filter that drops the blocks Rust's panic hook prints
there (deltalake's object store panicking on a failed disk); Python's own stderr keeps
the real descriptor, so messages and colour detection are unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
import threading
from collections.abc import Iterator

_CAUSES: tuple[tuple[int, str, str], ...] = (
    (errno.EADDRINUSE, "address already in use", "the address is already in use"),
    (errno.EROFS, "read-only file system", "the file system is read-only"),
    (errno.ENOSPC, "no space left on device", "no space left on the device"),
    (errno.EDQUOT, "disk quota exceeded", "the disk quota is exceeded"),
    (errno.EACCES, "permission denied", "permission denied"),
    (errno.ECONNREFUSED, "connection refused", "the connection was refused"),
    (errno.EHOSTUNREACH, "no route to host", "the host is unreachable"),
    (errno.ENETUNREACH, "network is unreachable", "the network is unreachable"),
)
_PANIC_START = re.compile(r"^thread '[^']*'( \(\d+\))? panicked at ")
_PANIC_END = re.compile(r"^note: ")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def cause_of(exc: BaseException) -> str | None:
    """One line naming the cause of `exc` when it is one of the machine's errors above
    (by errno, or by the OS's words in the message), else None."""
    for e in _chain(exc):
        text = str(e).lower()
        for code, words, said in _CAUSES:
            if (isinstance(e, OSError) and e.errno == code) or words in text:
                return f"{said} ({_where(e, code)}{os.strerror(code)}, os error {code})"
        if type(e).__name__ == "PanicException":
            return f"the store's I/O layer failed: {_first_line(e)}"
    return None


def _where(e: BaseException, code: int) -> str:
    if code == errno.EADDRINUSE:
        m = re.search(r"\('?([\w.:-]+)'?, (\d+)\)", str(e))
        return f"{m.group(1)}:{m.group(2)}: " if m else ""
    name = getattr(e, "filename", None)
    if name:
        return f"{name}: "
    m = re.search(r"(?:^|\s)(/[^\s:#]+)", str(e))
    return f"{m.group(1)}: " if m else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


@contextlib.contextmanager
def hide_rust_panics() -> Iterator[None]:
    """While the body runs, drop Rust panic blocks written to file descriptor 2."""
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to protect
        yield
        return
    try:
        own = sys.stderr.fileno() == 2  # else a caller's stream (a test's redirect): kept
    except (AttributeError, OSError, ValueError):
        own = False
    r, w = os.pipe()
    old_stderr = sys.stderr
    if own:
        sys.stderr = os.fdopen(os.dup(real), "w", buffering=1, errors="backslashreplace")
    os.dup2(w, 2)
    os.close(w)

    def forward() -> None:
        dropping = False
        blank = b""  # a blank line is held: Rust's hook prints one before its block
        with os.fdopen(r, "rb") as src:
            for line in src:
                text = line.decode("utf-8", "replace")
                if not dropping and _PANIC_START.match(text):
                    dropping, blank = True, b""
                if dropping:
                    dropping = not _PANIC_END.match(text)
                    continue
                if not line.strip() and not blank:
                    blank = line
                    continue
                with contextlib.suppress(OSError):
                    os.write(real, blank + line)
                blank = b""
            if blank:
                with contextlib.suppress(OSError):
                    os.write(real, blank)

    t = threading.Thread(target=forward, name="hubtide-stderr", daemon=True)
    t.start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(real, 2)  # closes our write end of the pipe: the filter sees EOF
        t.join(1.0)
        if own:
            with contextlib.suppress(Exception):
                sys.stderr.close()
            sys.stderr = old_stderr
        os.close(real)

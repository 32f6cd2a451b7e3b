"""Deterministic hashing for the simulated world.

Every derived value (commit ids, discussion titles, file sizes, noise) is a pure function of
(seed, a few integers), so the world never stores what it can recompute and the same seed
always gives the same world. Vectorised over numpy uint64 arrays; scalars go through the
same code.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def mix(x: U64) -> U64:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element."""
    with np.errstate(over="ignore"):
        z = (x + _GOLD).astype(np.uint64)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def hash_ints(*parts: int | npt.ArrayLike) -> U64:
    """Hash a tuple of ints (or broadcastable int arrays) into uint64."""
    h = np.zeros((), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            arr = np.asarray(p).astype(np.int64).astype(np.uint64)
            h = mix(h ^ arr)
    return np.asarray(h, dtype=np.uint64)


def unit(*parts: int | npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Uniform floats in [0, 1) from hashed ints."""
    return (hash_ints(*parts) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


_MASK = (1 << 64) - 1
_G, _A, _B = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def h64(*parts: int) -> int:
    """Scalar hash of ints; equals `hash_ints` on the same values, in pure Python (fast)."""
    h = 0
    for p in parts:
        z = ((h ^ (int(p) & _MASK)) + _G) & _MASK
        z = ((z ^ (z >> 30)) * _A) & _MASK
        z = ((z ^ (z >> 27)) * _B) & _MASK
        h = z ^ (z >> 31)
    return h


def uscalar(*parts: int) -> float:
    """Uniform float in [0, 1); equals `unit` on the same values."""
    return (h64(*parts) >> 11) / float(1 << 53)


def hex40(*parts: int) -> str:
    """A 40-hex-digit id (git sha look-alike) from ints."""
    a = h64(*parts, 1)
    b = h64(*parts, 2)
    c = h64(*parts, 3)
    return f"{a:016x}{b:016x}{c:016x}"[:40]


def hex24(*parts: int) -> str:
    """A 24-hex-digit id (Mongo ObjectId look-alike)."""
    a = h64(*parts, 11)
    b = h64(*parts, 12)
    return f"{a:016x}{b:016x}"[:24]

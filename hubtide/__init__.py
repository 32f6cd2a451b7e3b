"""hubtide: an incrementally updated history of the Hugging Face Hub and package registries.

This package is the composition root (CLI, config, wiring). Nothing imports it.

`__version__` is looked up on first use (PEP 562): reading the installed metadata costs a
few ms that a store command does not need (issue 15 point 6).
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'hubtide' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("hubtide")
    except PackageNotFoundError:  # running from a source tree without install
        value = "0.0.0+src"
    globals()["__version__"] = value
    return value

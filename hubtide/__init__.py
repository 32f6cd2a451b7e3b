"""hubtide: an incrementally updated history of the Hugging Face Hub and package registries.

This package is the composition root (CLI, config, wiring). Nothing imports it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hubtide")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"

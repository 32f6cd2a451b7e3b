from __future__ import annotations

from pathlib import Path

import pytest

from storage import Store
from tests.analytics.world import paper_world


@pytest.fixture(scope="module")
def paper_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The hand-made paper world (written once per test module through the store)."""
    root: Path = tmp_path_factory.mktemp("paper")
    return paper_world(Store.open(str(root / "store")))

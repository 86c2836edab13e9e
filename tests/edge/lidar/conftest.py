"""Soak runs are opt-in: ``pytest -m soak tests/edge/lidar``.

Until the project's pytest configuration deselects ``soak`` everywhere, this deselects (not
skips) the soak tests of this directory unless the ``-m`` expression asks for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.getoption("markexpr") or ""):
        return
    keep, drop = [], []
    for item in items:
        mine = HERE in Path(str(item.path)).resolve().parents
        (drop if mine and item.get_closest_marker("soak") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

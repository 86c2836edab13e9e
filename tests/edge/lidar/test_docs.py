"""The configuration and scene examples in docs/lidar.md are valid."""

from __future__ import annotations

import re
from pathlib import Path

from edge.config import parse_config
from edge.lidar.config import LidarConfig
from edge.lidar.scene import SceneConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "lidar.md"


def test_doc_examples_validate() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 2
    config = parse_config(blocks[0], LidarConfig, "docs/lidar.md config")
    assert [z.id for z in config.zones] == ["transformer"]
    scene = parse_config(blocks[1], SceneConfig, "docs/lidar.md scene")
    assert scene.loop_s == 60

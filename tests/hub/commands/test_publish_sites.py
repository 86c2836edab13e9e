"""No MQTT publish inside a database transaction: only the command publisher (after its claim
commits), ingest's acks (after the batch commits) and the live relay (handed events by the live
map, which every service tells only after its commit) may call ``bus.publish`` in the hub."""

from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[3] / "hub"
ALLOWED = {"commands/publisher.py", "ingest.py", "live_relay.py"}


def _publishes_on_a_bus(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "publish"
        ):
            target = node.func.value
            name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if "bus" in name.lower():
                lines.append(node.lineno)
    return lines


def test_only_the_publisher_and_ingest_acks_publish() -> None:
    found = {
        str(path.relative_to(HUB)): lines
        for path in HUB.rglob("*.py")
        if (lines := _publishes_on_a_bus(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert "commands/publisher.py" in found  # the check sees real call sites
    assert set(found) <= ALLOWED, {k: v for k, v in found.items() if k not in ALLOWED}

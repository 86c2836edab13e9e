"""The hub's area layering (STYLE.md habit 13): routes hold no SQL, services build no SQL
statements, only repositories do."""

from __future__ import annotations

import ast
from pathlib import Path

HUB = Path(__file__).resolve().parents[2] / "hub"
AREAS = (
    "devices",
    "alerts",
    "positions",
    "geo",
    "users",
    "mapview",
    "commands",
    "warnings",
    "notifications",
    "fieldreports",
    "open311",
    "incstats",
    "incidents",
    "org",
)
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "and_", "or_", "func"}
ROUTE_EXCEPTIONS: dict[str, set[str]] = {}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_every_area_has_the_three_modules() -> None:
    for area in AREAS:
        for module in ("service.py", "repository.py", "routes.py"):
            assert (HUB / area / module).is_file(), f"hub/{area}/{module}"


def test_routes_hold_no_sql() -> None:
    for area in AREAS:
        imports = _imports(HUB / area / "routes.py") - ROUTE_EXCEPTIONS.get(area, set())
        sql = {i for i in imports if i.startswith(("sqlalchemy", "hub.schema"))}
        assert not sql, f"hub/{area}/routes.py imports {sorted(sql)}"


def test_services_build_no_sql_statements() -> None:
    for area in AREAS:
        imports = _imports(HUB / area / "service.py")
        builders = {
            i for i in imports if i.startswith("sqlalchemy.") and i.split(".")[-1] in SQL_BUILDERS
        }
        schema = {i for i in imports if i.startswith("hub.schema.")}
        if area == "geo":
            schema -= {"hub.schema.zones", "hub.schema.grid_cells"}  # names the table, no SQL
        assert not builders and not schema, (
            f"hub/{area}/service.py imports {sorted(builders | schema)}"
        )

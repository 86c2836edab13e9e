"""The dashboard's JavaScript stays ESLint-clean (hub/dashboard/eslint.config.js: the
recommended rules plus a ban on every API that parses a string as markup), and the ban
really bites: a scratch module with each forbidden sink is refused."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[3] / "hub" / "dashboard"
ESLINT = DASHBOARD / "node_modules" / ".bin" / "eslint"

# One line per sink the config must refuse (each a way to turn a string into markup or code).
FORBIDDEN = {
    "innerHTML": "(el, s) => { el.innerHTML = s; };",
    "outerHTML": "(el, s) => { el.outerHTML = s; };",
    "computed innerHTML": '(el, s) => { el["innerHTML"] = s; };',
    "insertAdjacentHTML": '(el, s) => el.insertAdjacentHTML("beforeend", s);',
    "document.write": "(s) => document.write(s);",
    "DOMParser": '(s) => new DOMParser().parseFromString(s, "text/html");',
    "Leaflet icon html": "(L, s) => L.divIcon({ html: `<b>${s}</b>` });",
    "Leaflet tooltip string": "(m, s) => m.bindTooltip(`<b>${s}</b>`);",
    "Leaflet popup string": '(m, s) => m.bindPopup("<b>" + s + "</b>");',
    "Leaflet attribution unescaped": '(L, s) => L.tileLayer("/t", { attribution: s });',
    "test hook on window": "(x) => { window.__gw = x; };",
}


def _eslint(*targets: str) -> subprocess.CompletedProcess[str]:
    if not ESLINT.exists():
        pytest.fail("ESLint is missing: run `npm ci` in hub/dashboard (scripts/bootstrap.sh does)")
    if shutil.which("node") is None:
        pytest.fail("node is missing: scripts/bootstrap.sh installs it")
    return subprocess.run(
        [str(ESLINT), "--max-warnings", "0", "--format", "json", *targets],
        cwd=DASHBOARD,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _problems(res: subprocess.CompletedProcess[str]) -> list[str]:
    found = []
    for result in json.loads(res.stdout or "[]"):
        for msg in result["messages"]:
            where = f"{Path(result['filePath']).name}:{msg['line']}:{msg['column']}"
            found.append(f"{where} {msg.get('ruleId')}: {msg['message']}")
    return found


def test_dashboard_javascript_is_eslint_clean() -> None:
    res = _eslint("js", "field", "eslint.config.js")
    assert res.returncode == 0, "\n".join(_problems(res)) or res.stderr
    assert _problems(res) == []


def test_eslint_refuses_every_markup_sink() -> None:
    scratch = DASHBOARD / "js" / "zz-lint-scratch.js"
    try:
        lines = [f"export const sink{i} = {code}" for i, code in enumerate(FORBIDDEN.values())]
        scratch.write_text("\n".join(lines) + "\n", encoding="utf-8")
        res = _eslint(str(scratch.relative_to(DASHBOARD)))
    finally:
        scratch.unlink(missing_ok=True)
    problems = _problems(res)
    assert res.returncode != 0
    flagged_lines = {int(re.search(r":(\d+):", p).group(1)) for p in problems}  # type: ignore[union-attr]
    for line, name in enumerate(FORBIDDEN, start=1):
        assert line in flagged_lines, (name, problems)


def test_markup_sinks_appear_nowhere_in_the_dashboard() -> None:
    """Also outside js/ (index.html and any inline script): the lint covers js/ only."""
    sink = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|__gw|data-ready")
    hits = [
        f"{path.relative_to(DASHBOARD)}:{n}"
        for path in [
            *DASHBOARD.glob("*.html"),
            *DASHBOARD.glob("js/**/*.js"),
            *DASHBOARD.glob("field/**/*.html"),
            *DASHBOARD.glob("field/**/*.js"),
        ]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if sink.search(line) and not line.lstrip().startswith("//")
    ]
    assert hits == []

"""The incident workflow's benchmarks (issue 12), each against a baseline measured in the same
run, one after the other in their own processes:

    .venv/bin/python bench/incidents.py [--only routing,warnings] [-- extra args for each]

- incidents_routing.py     routing decisions/s and alert-to-incident grouping rate
- incidents_classify.py    field-report classifications/s; incident stats over 100,000 incidents
- incidents_escalation.py  one escalation sweep over 100,000 open incidents
- incidents_warnings.py    warning recompute after one incident change, 1,000 cells / 100,000
                           incidents, against a full recompute
- incidents_reports.py     field reports accepted/s with a photo
- incidents_org.py         GeoJSON import of 1,000 grid cells

Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["routing", "classify", "escalation", "warnings", "reports", "org"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts: {', '.join(unknown)} (known: {', '.join(PARTS)})")
    failed = []
    for part in chosen:
        script = HERE / f"incidents_{part}.py"
        print(f"\n=== bench/{script.name} ===", flush=True)
        started = time.monotonic()
        res = subprocess.run([sys.executable, str(script)], check=False)
        print(f"=== {script.name}: exit {res.returncode} in {time.monotonic() - started:.0f} s")
        if res.returncode != 0:
            failed.append(part)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

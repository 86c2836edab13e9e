#!/bin/sh
# Link the GStreamer Python overrides of Debian's python3-gst-1.0 into a venv's PyGObject.
# PyGObject built from PyPI lacks them (no Gst.Fraction, no structure indexing). Idempotent.
#   sh scripts/link_gst_overrides.sh [VENV]       (default: <repo>/.venv)
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$repo/.venv}
src=/usr/lib/python3/dist-packages/gi/overrides
dst=$("$venv/bin/python" -c 'import gi, os; print(os.path.join(os.path.dirname(gi.__file__), "overrides"))')
if [ ! -f "$src/Gst.py" ]; then
    echo "link_gst_overrides: $src/Gst.py missing: apt-get install python3-gst-1.0" >&2
    exit 1
fi
for f in "$src"/Gst*.py "$src"/_gi_gst*.so; do
    [ -e "$f" ] || continue
    ln -sf "$f" "$dst/$(basename "$f")"
done
echo "GStreamer overrides linked into $dst"

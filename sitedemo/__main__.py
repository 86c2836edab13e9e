"""``python -m sitedemo [--run-dir D] [--port P] [--duration-s S]``: ``gridward demo`` without
the console script (e.g. from a checkout that has not been installed)."""

import sys

from sitedemo.cli import main

sys.exit(main())

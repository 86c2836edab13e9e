"""Warning rules: which open incidents and alert rates colour a grid cell red, orange, yellow."""

from __future__ import annotations

from edge.config import StrictModel


class WarningsConfig(StrictModel):
    pass

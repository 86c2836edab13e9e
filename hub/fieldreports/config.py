"""Field report intake limits (sizes, rates)."""

from __future__ import annotations

from edge.config import StrictModel


class FieldReportsConfig(StrictModel):
    pass

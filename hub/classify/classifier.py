"""The field-report category classifier (to be built: trained on shipped, labelled examples)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Suggestion:
    category: str
    confidence: float  # 0..1


class ReportClassifier:
    @classmethod
    def load_default(cls) -> ReportClassifier:
        return cls()

    def suggest(self, text: str) -> Suggestion | None:
        """The most likely category for ``text``; None when nothing is known."""
        return None

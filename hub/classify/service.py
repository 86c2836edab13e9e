"""Classification as the API offers it: the suggestion and its runners-up."""

from __future__ import annotations

from hub.classify.classifier import ReportClassifier, Suggestion
from hub.classify.config import ClassifierConfig


def classify(config: ClassifierConfig, text: str) -> tuple[Suggestion | None, list[Suggestion]]:
    """The suggestion (None below ``min_confidence`` or with nothing to go on) and up to
    ``config.alternatives`` runners-up, best first."""
    classifier = ReportClassifier.load_default(config)
    ranked = classifier.ranked(text)
    if not ranked or ranked[0].confidence < config.min_confidence:
        return None, ranked[: config.alternatives]
    return ranked[0], ranked[1 : 1 + config.alternatives]

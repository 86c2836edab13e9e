"""Held-out accuracy of the shipped classifier: ``python -m hub.classify.evaluate``.

Prints the top-1 accuracy on the held-out rows overall, per language and per category, the
confusion pairs (true -> predicted), and what the confidence threshold does: how many held-out
reports get a suggestion at all (coverage) and how many of those are right (precision).
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from hub.classify.classifier import DATA, Example, ReportClassifier, load_examples, split

NONE = "(none)"
Tally = dict[str, list[int]]  # key -> [correct, total]


@dataclass
class Evaluation:
    train_rows: int
    held_out_rows: int
    min_confidence: float
    correct: int = 0  # top-1 right, whatever its confidence
    suggested: int = 0  # at or above the threshold
    suggested_correct: int = 0
    by_language: Tally = field(default_factory=dict)
    by_category: Tally = field(default_factory=dict)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.correct / self.held_out_rows if self.held_out_rows else 0.0

    @property
    def coverage(self) -> float:
        return self.suggested / self.held_out_rows if self.held_out_rows else 0.0

    @property
    def precision(self) -> float:
        return self.suggested_correct / self.suggested if self.suggested else 0.0


def _count(table: Tally, key: str, ok: bool) -> None:
    tally = table.setdefault(key, [0, 0])
    tally[0] += ok
    tally[1] += 1


def evaluate(classifier: ReportClassifier, held_out: list[Example], train_rows: int) -> Evaluation:
    threshold = classifier.config.min_confidence
    result = Evaluation(train_rows, len(held_out), threshold)
    for row in held_out:
        ranked = classifier.ranked(row.text)
        predicted = ranked[0].category if ranked else NONE
        ok = predicted == row.category
        result.correct += ok
        if ranked and ranked[0].confidence >= threshold:
            result.suggested += 1
            result.suggested_correct += ok
        _count(result.by_language, row.lang, ok)
        _count(result.by_category, row.category, ok)
        if not ok:
            result.confusions[(row.category, predicted)] += 1
    return result


def evaluate_default() -> Evaluation:
    train, held = split(load_examples(DATA))
    return evaluate(ReportClassifier.load_default(), held, len(train))


def report(result: Evaluation) -> str:
    lines = [
        f"training rows {result.train_rows}, held-out rows {result.held_out_rows}",
        f"held-out top-1 accuracy {result.accuracy:.3f} ({result.correct}/{result.held_out_rows})",
        f"at min_confidence {result.min_confidence}: coverage {result.coverage:.3f} "
        f"({result.suggested}/{result.held_out_rows}), precision {result.precision:.3f} "
        f"({result.suggested_correct}/{result.suggested})",
    ]
    for title, table in (
        ("per language:", result.by_language),
        ("per category:", result.by_category),
    ):
        lines.append(title)
        for key, (ok, total) in sorted(table.items()):
            lines.append(f"  {key:<20} {ok / total:.3f} ({ok}/{total})")
    lines.append("confusions (true -> predicted: count):")
    lines.extend(f"  {t} -> {p}: {n}" for (t, p), n in result.confusions.most_common())
    if not result.confusions:
        lines.append("  none")
    return "\n".join(lines)


def main() -> int:
    print(report(evaluate_default()))  # noqa: T201 - a command-line report
    return 0


if __name__ == "__main__":
    sys.exit(main())

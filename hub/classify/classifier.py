"""The field-report category classifier: multinomial naive Bayes over character n-grams
(Chinese) and word uni/bigrams (Latin script), trained at load from the shipped, labelled
examples in ``data/reports.jsonl``.

Why these features: CJK text has no spaces, and character 1-3 grams catch words ("路灯",
"井盖", "消防通道") without a word segmenter; English words and word pairs ("fire exit",
"street light") carry the meaning there. Mixed text gets both.

The shipped model is trained on the *training split only* (a stable hash of the normalised
text puts 20% of the rows aside), so the accuracy ``python -m hub.classify.evaluate`` reports
on the held-out rows is the accuracy of the model the hub actually runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hub.classify.config import ClassifierConfig
from hub.incidents.categories import Vocabulary

DATA = Path(__file__).parent / "data" / "reports.jsonl"
HELD_OUT_PERCENT = 20
SMOOTHING = 0.5  # Lidstone's additive smoothing (chosen on the training split)
# Naive Bayes multiplies dependent n-gram probabilities and so is wildly over-confident:
# overlapping 1-3 grams of one word count three times. Dividing the log-likelihoods by this
# before the softmax gives posteriors whose size means something for the threshold.
TEMPERATURE = 2.0

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKENS = re.compile(rf"([{_CJK}]+)|([a-z0-9]+(?:'[a-z]+)?)")
# fmt: off
_STOP = frozenset((
    "a", "an", "the", "of", "is", "are", "was", "were", "be", "been", "and", "or", "to", "in",
    "on", "at", "for", "it", "its", "this", "that", "there", "has", "have", "had", "with",
    "by", "from", "as", "i", "we", "my", "our", "me", "you", "he", "she", "they", "them",
    "his", "her", "their", "so", "very", "all", "every", "some", "again", "also", "just",
))
# fmt: on


@dataclass(frozen=True, slots=True)
class Suggestion:
    category: str
    confidence: float  # 0..1


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    category: str
    lang: str


def normalise(text: str, max_chars: int = 2000) -> str:
    """NFKC (full-width letters and digits become ASCII), lower case, control and format
    characters (NUL included) turned into spaces; cut to ``max_chars`` first so a huge text
    costs no more than a long one."""
    cut = text[: max_chars * 2]  # NFKC can grow a string; cut again below
    folded = unicodedata.normalize("NFKC", cut).lower()
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in folded)
    return cleaned[:max_chars]


def _stem(word: str) -> str:
    # Just enough folding for report phrasing: "lights"/"light", "bins"/"bin".
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def features(text: str, max_chars: int = 2000) -> list[str]:
    """The n-gram features of ``text`` (prefixed by kind so a Latin "a" and a CJK character
    never collide)."""
    out: list[str] = []
    words: list[str] = []

    def flush_words() -> None:
        out.extend("w:" + w for w in words)
        out.extend(f"b:{a} {b}" for a, b in itertools.pairwise(words))
        words.clear()

    for match in _TOKENS.finditer(normalise(text, max_chars)):
        cjk, latin = match.group(1), match.group(2)
        if cjk:
            flush_words()
            for n in (1, 2, 3):
                out.extend("c:" + cjk[i : i + n] for i in range(len(cjk) - n + 1))
        elif latin not in _STOP:
            words.append(_stem(latin))
    flush_words()
    return out


def is_held_out(text: str) -> bool:
    """The deterministic split: a hash of the normalised text, so a row (and any copy of it)
    is always on the same side."""
    digest = hashlib.sha256(normalise(text).strip().encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT


def load_examples(path: Path = DATA) -> list[Example]:
    rows: list[Example] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        if set(item) != {"text", "category", "lang"}:
            raise ValueError(f"{path}:{number}: a row needs exactly text, category and lang")
        rows.append(Example(item["text"], item["category"], item["lang"]))
    return rows


def split(rows: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    train = [r for r in rows if not is_held_out(r.text)]
    held = [r for r in rows if is_held_out(r.text)]
    return train, held


class ReportClassifier:
    """Suggests one of the field-reportable categories for a report's free text."""

    def __init__(
        self,
        examples: Iterable[Example],
        config: ClassifierConfig | None = None,
        categories: Sequence[str] | None = None,
    ) -> None:
        self.config = config or ClassifierConfig()
        allowed = set(categories) if categories is not None else None
        counts: dict[str, Counter[str]] = {}
        docs: Counter[str] = Counter()
        for ex in examples:
            if allowed is not None and ex.category not in allowed:
                continue
            counts.setdefault(ex.category, Counter()).update(features(ex.text))
            docs[ex.category] += 1
        if not counts:
            raise ValueError("the classifier needs at least one labelled example")
        self.categories: tuple[str, ...] = tuple(sorted(counts))
        vocabulary = set().union(*counts.values())
        self.vocabulary: frozenset[str] = frozenset(vocabulary)
        size = len(vocabulary)
        total_docs = sum(docs.values())
        self._prior = {c: math.log(docs[c] / total_docs) for c in self.categories}
        self._log_p: dict[str, dict[str, float]] = {}
        self._log_unseen: dict[str, float] = {}
        for c in self.categories:
            total = sum(counts[c].values()) + SMOOTHING * size
            self._log_p[c] = {f: math.log((n + SMOOTHING) / total) for f, n in counts[c].items()}
            self._log_unseen[c] = math.log(SMOOTHING / total)

    @classmethod
    def load_default(cls, config: ClassifierConfig | None = None) -> ReportClassifier:
        """The shipped model (trained once per process and configuration, a few ms)."""
        return _default(config or ClassifierConfig())

    def ranked(self, text: str) -> list[Suggestion]:
        """Every category with its posterior, best first; empty when the text holds no word
        or character pair the training data has seen (empty, punctuation, gibberish, another
        script, lone characters)."""
        known = [f for f in features(text, self.config.max_text_chars) if f in self.vocabulary]
        # One known Chinese character is no evidence ("的的的" would otherwise get a guess):
        # ask for a known word, word pair or character pair.
        if not any(not f.startswith("c:") or len(f) > 3 for f in known):
            return []
        scores = {}
        for c in self.categories:
            log_p, unseen = self._log_p[c], self._log_unseen[c]
            scores[c] = self._prior[c] + sum(log_p.get(f, unseen) for f in known)
        best = max(scores.values())
        weights = {c: math.exp((s - best) / TEMPERATURE) for c, s in scores.items()}
        total = sum(weights.values())
        ranked = [Suggestion(c, w / total) for c, w in weights.items()]
        ranked.sort(key=lambda s: (-s.confidence, s.category))
        return ranked

    def suggest(self, text: str) -> Suggestion | None:
        """The most likely category for ``text``; None when nothing is known or the best
        guess is below ``min_confidence``."""
        ranked = self.ranked(text)
        if not ranked or ranked[0].confidence < self.config.min_confidence:
            return None
        return ranked[0]


@cache
def _default(config: ClassifierConfig) -> ReportClassifier:
    train, _ = split(load_examples())
    reportable = [c.id for c in Vocabulary().reportable()]
    return ReportClassifier(train, config, reportable)

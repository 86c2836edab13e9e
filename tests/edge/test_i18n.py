"""The edge catalogue (edge/i18n): both languages carry the same keys, sorted, no empty text."""

from __future__ import annotations

import json
import re

from edge.i18n import CATALOGUES, LANGUAGES, catalogue, translate

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def test_catalogues_have_the_same_sorted_keys_and_placeholders() -> None:
    books = {lang: catalogue(lang) for lang in LANGUAGES}
    assert set(books["en"]) == set(books["zh-CN"])
    for lang in LANGUAGES:
        raw = json.loads((CATALOGUES / f"{lang}.json").read_text("utf-8"))
        assert list(raw) == sorted(raw), f"{lang}.json keys are not sorted"
        assert all(text.strip() for text in raw.values()), f"{lang}.json has an empty message"
    for key, text in books["en"].items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(books["zh-CN"][key])), key


def test_translate_fills_placeholders() -> None:
    key = next(iter(catalogue("en")))
    assert translate(key, "zh-CN") == catalogue("zh-CN")[key]

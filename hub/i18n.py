"""The server side of the message catalogue: the dashboard's catalogues (en, zh-CN) are the
one place for user-facing strings; the hub renders notifications, printable pages and CAP
texts from the same keys."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")
CATALOGUES = Path(__file__).parent / "dashboard" / "i18n"


@cache
def catalogue(language: Language) -> dict[str, str]:
    data: dict[str, str] = json.loads((CATALOGUES / f"{language}.json").read_text("utf-8"))
    return data


def translate(key: str, language: Language = "en", **params: Any) -> str:
    """The message for ``key`` with ``{name}`` placeholders filled; a missing key is an error
    (a test checks every key the hub uses exists in both catalogues)."""
    text = catalogue(language)[key]
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def localised(key: str, **params: Any) -> dict[str, str]:
    """``{language: text}`` for every catalogue language."""
    return {lang: translate(key, lang, **params) for lang in LANGUAGES}

"""The edge's message catalogue: every string an edge agent shows a person (the glasses HUD,
spoken cues, operator CLI messages) has a key in ``edge/i18n/{en,zh-CN}.json`` (this package).

Edge agents run without the hub installed, so they carry their own catalogue; it follows the
dashboard's rules (hub/dashboard/i18n): sorted keys, the same keys in both languages,
``{name}`` placeholders.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

Language = Literal["en", "zh-CN"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-CN")
CATALOGUES = Path(__file__).parent


@cache
def catalogue(language: Language) -> dict[str, str]:
    data: dict[str, str] = json.loads((CATALOGUES / f"{language}.json").read_text("utf-8"))
    return data


def translate(key: str, language: Language = "en", **params: Any) -> str:
    """The message for ``key`` with ``{name}`` placeholders filled; a missing key raises
    ``KeyError`` (a test checks both catalogues have the same keys)."""
    text = catalogue(language)[key]
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    return text

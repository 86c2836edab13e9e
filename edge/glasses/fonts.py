"""The HUD's font: one face that covers Latin and CJK, so an English and a Chinese HUD share
metrics and no label falls back to tofu boxes.

Lookup order: the configured path, then fontconfig (``fc-match`` for ``:lang=zh-cn``), then
the paths Debian's ``fonts-noto-cjk`` installs. A candidate is accepted only when it really
draws a CJK glyph (fontconfig happily answers DejaVu for ``:lang=zh``), and a machine without
one is a loud :class:`FontError` naming the package to install.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from edge.errors import GridwardError

log = logging.getLogger(__name__)

DEBIAN_PACKAGE = "fonts-noto-cjk"
# (path, face index): index 2 of the Noto CJK collections is the Simplified Chinese face.
KNOWN_FONTS: tuple[tuple[Path, int], ...] = (
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),
    (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"), 2),
    (Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"), 2),
    (Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"), 2),
)
# A CJK ideograph every CJK font has, and a code point no font maps (plane-15 private use):
# the second renders as the font's .notdef glyph, so equal masks mean "not covered".
PROBE_CJK = "中"
PROBE_MISSING = "\U000ffffd"
FC_TIMEOUT_S = 5.0


class FontError(GridwardError, ValueError):
    """No usable CJK-capable font; the message says what to install or configure. A
    ValueError like the renderer's other refusals (a bad size, a bad mode), so a caller that
    checks a display config catches all three the same way."""


@dataclass(frozen=True, slots=True)
class FontSource:
    path: Path
    index: int = 0


def _mask_bytes(font: ImageFont.FreeTypeFont, text: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(text)
    return mask.size, bytes(mask)


def draws_glyph(font: ImageFont.FreeTypeFont, char: str) -> bool:
    """True when ``font`` has its own glyph for ``char`` (not the .notdef box or nothing)."""
    glyph = _mask_bytes(font, char)
    if not any(glyph[1]):
        return False
    return glyph != _mask_bytes(font, PROBE_MISSING)


def _covers_cjk(source: FontSource) -> bool:
    try:
        font = ImageFont.truetype(str(source.path), 24, index=source.index)
    except OSError:
        return False
    return draws_glyph(font, PROBE_CJK)


def _fc_match() -> FontSource | None:
    exe = shutil.which("fc-match")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "-f", "%{file}|%{index}", "sans-serif:lang=zh-cn"],
            capture_output=True, text=True, timeout=FC_TIMEOUT_S, check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    file, _, index = out.partition("|")
    if not file:
        return None
    return FontSource(Path(file), int(index) if index.isdigit() else 0)


def find_cjk_font(configured: Path | None = None, configured_index: int = 0) -> FontSource:
    """The first CJK-capable font in lookup order; :class:`FontError` when there is none.

    A configured font that cannot draw CJK is an error, not a silent fallback: the operator
    asked for that file."""
    if configured is not None:
        source = FontSource(configured, configured_index)
        if not configured.is_file():
            raise FontError(f"HUD font {configured} does not exist")
        if not _covers_cjk(source):
            raise FontError(
                f"HUD font {configured} (face {configured_index}) has no CJK glyphs; "
                f"configure a CJK font, e.g. from the Debian package {DEBIAN_PACKAGE}")
        return source
    candidates: list[FontSource] = []
    matched = _fc_match()
    if matched is not None:
        candidates.append(matched)
    candidates.extend(FontSource(path, index) for path, index in KNOWN_FONTS if path.is_file())
    for source in candidates:
        if _covers_cjk(source):
            log.debug("HUD font %s face %s", source.path, source.index)
            return source
    raise FontError(
        "no CJK-capable font found for the HUD (tried fontconfig and the Noto CJK paths); "
        f"install the Debian package {DEBIAN_PACKAGE} or set the font path in the config")


class FontBook:
    """Loaded sizes of one font, cached: layout asks for the same few sizes every frame."""

    def __init__(self, source: FontSource) -> None:
        self.source = source
        self._load = lru_cache(maxsize=32)(self._truetype)

    def _truetype(self, size: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(self.source.path), size, index=self.source.index)

    def get(self, size: int) -> ImageFont.FreeTypeFont:
        return self._load(max(6, int(size)))


@lru_cache(maxsize=4)
def default_fontbook(configured: Path | None = None) -> FontBook:
    return FontBook(find_cjk_font(configured))

"""Draw the field page's app icons (hub/dashboard/field/icons/): an SVG and the PNG sizes
phones ask a web app manifest for. A 3x3 grid (the district's cells) with a map pin on it.

    python scripts/make_field_icons.py

The PNGs are drawn with Pillow from the same geometry as the SVG (no SVG rasteriser is
installed), with the pin inside the maskable safe zone (the middle 80 %).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "hub" / "dashboard" / "field" / "icons"
BLUE = "#1f4e79"
LINE = "#9cc3e6"
PIN = "#d7263d"
SIZE = 512  # the SVG's user units
GRID = (96, 416)  # the grid's outer edges
PIN_CENTRE = (256, 226)
PIN_R = 78
PIN_TIP = (256, 380)


def svg() -> str:
    lo, hi = GRID
    step = (hi - lo) / 3
    lines = "".join(
        f'<line x1="{lo + i * step:g}" y1="{lo}" x2="{lo + i * step:g}" y2="{hi}"/>'
        f'<line x1="{lo}" y1="{lo + i * step:g}" x2="{hi}" y2="{lo + i * step:g}"/>'
        for i in range(4)
    )
    cx, cy = PIN_CENTRE
    tx, ty = PIN_TIP
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}">'
        f'<rect width="{SIZE}" height="{SIZE}" rx="96" fill="{BLUE}"/>'
        f'<g stroke="{LINE}" stroke-width="12" stroke-linecap="round">{lines}</g>'
        f'<path d="M{cx - PIN_R} {cy} A{PIN_R} {PIN_R} 0 1 1 {cx + PIN_R} {cy} '
        f'L{tx} {ty} Z" fill="{PIN}" stroke="#fff" stroke-width="10" stroke-linejoin="round"/>'
        f'<circle cx="{cx}" cy="{cy}" r="30" fill="#fff"/></svg>\n'
    )


def png(side: int) -> Image.Image:
    scale = side / SIZE
    img = Image.new("RGB", (side, side), BLUE)
    draw = ImageDraw.Draw(img)
    lo, hi = (v * scale for v in GRID)
    step = (hi - lo) / 3
    width = max(1, round(12 * scale))
    for i in range(4):
        at = lo + i * step
        draw.line([(at, lo), (at, hi)], fill=LINE, width=width)
        draw.line([(lo, at), (hi, at)], fill=LINE, width=width)
    cx, cy = (v * scale for v in PIN_CENTRE)
    r = PIN_R * scale
    tx, ty = (v * scale for v in PIN_TIP)
    outline = max(1, round(10 * scale))
    draw.polygon([(cx - r, cy), (cx + r, cy), (tx, ty)], fill=PIN, outline="#fff", width=outline)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=PIN, outline="#fff", width=outline)
    draw.polygon([(cx - r + outline, cy), (cx + r - outline, cy), (tx, ty - outline)], fill=PIN)
    hole = 30 * scale
    draw.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill="#fff")
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon.svg").write_text(svg(), encoding="utf-8")
    for side in (192, 512):
        png(side).save(OUT / f"icon-{side}.png", optimize=True)


if __name__ == "__main__":
    main()

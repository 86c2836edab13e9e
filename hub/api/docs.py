"""``/docs``: Swagger UI served from the installed npm package ``swagger-ui-dist``, never a
CDN, so the API reference works on a site with no internet. The page holds no inline script:
its init script is a file, so it runs under a strict Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER_DIST = Path(__file__).resolve().parents[1] / "dashboard/node_modules/swagger-ui-dist"
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui.css": (SWAGGER_DIST / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (SWAGGER_DIST / "swagger-ui-bundle.js", "text/javascript"),
    "favicon-32x32.png": (SWAGGER_DIST / "favicon-32x32.png", "image/png"),
    "docs-init.js": (STATIC_DIR / "docs-init.js", "text/javascript"),
}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gridward hub API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/docs-init.js"></script>
</body>
</html>
"""
MISSING = (
    "Swagger UI is not installed: run 'npm ci' in hub/dashboard (it installs swagger-ui-dist "
    "from package.json). The API document itself is at /openapi.json."
)

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_model=None)
def docs_page() -> HTMLResponse:
    if not SWAGGER_DIST.is_dir():
        raise HTTPException(503, MISSING)
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}", response_model=None)
def docs_asset(name: str) -> FileResponse:
    # An allow-list, not a directory mount: nothing else of node_modules is reachable here.
    entry = ASSETS.get(name)
    if entry is None or not entry[0].is_file():
        raise HTTPException(404, f"no documentation asset {name!r}")
    path, media_type = entry
    return FileResponse(path, media_type=media_type, headers={"X-Content-Type-Options": "nosniff"})

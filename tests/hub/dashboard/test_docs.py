"""``/docs`` works offline (issue 11, item 14): Swagger UI comes from the installed
swagger-ui-dist package through the hub, with every request to anywhere else blocked, and the
page renders the operations under a strict Content-Security-Policy (no inline script)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, Route

from tests.hub.conftest import RunningHub

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def test_docs_render_offline_under_a_strict_csp(hub: RunningHub, browser: Browser) -> None:
    hub_origin = urlsplit(hub.base_url).netloc
    blocked: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

        def route(r: Route) -> None:
            url = urlsplit(r.request.url)
            if url.netloc != hub_origin:
                blocked.append(r.request.url)
                r.abort()
                return
            if url.path == "/docs":
                # The page as served, plus the strictest CSP it must live with.
                res = r.fetch()
                r.fulfill(
                    response=res, headers={**res.headers, "content-security-policy": STRICT_CSP}
                )
                return
            r.continue_()

        context.route("**/*", route)
        page.goto(f"{hub.base_url}/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        summaries = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/devices" in summaries and "/api/v1/auth/login" in summaries
        assert not blocked, f"/docs reached outside the hub: {blocked}"
        assert not [c for c in console if "Content Security Policy" in c], console
    finally:
        context.close()


def test_docs_page_has_no_inline_script_and_no_cdn(hub: RunningHub) -> None:
    with httpx.Client(base_url=hub.base_url) as client:  # anonymous: /docs is public
        html = client.get("/docs")
        assert html.status_code == 200
        text = html.text
        assert "<script>" not in text and "cdn" not in text.lower() and "https://" not in text
        init = client.get("/docs/assets/docs-init.js")
        assert init.status_code == 200 and "/openapi.json" in init.text
        assert init.headers["x-content-type-options"] == "nosniff"
        assert client.get("/docs/assets/package.json").status_code == 404
        assert client.get("/docs/assets/..%2f..%2fapp.py").status_code == 404

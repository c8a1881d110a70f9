"""/docs and /redoc from this server alone: Swagger UI and ReDoc from an installed package.

FastAPI's own pages load their bundles from a public CDN, so a plant without internet saw a
blank page. ``fastapi-offline`` ships the same bundles; these routes hand them out from the
package's folder and point the two pages at them. Registered before ``ui.run`` sets FastAPI's
docs up, they are the ones that answer: FastAPI's own routes for the same paths, added
after, are never reached.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"  # FastAPI's default, which Swagger UI is told
OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# Only these files are served: a fixed list, so no request names a path of its own.
ASSET_NAMES = frozenset(
    {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
)


def install(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at /docs and ReDoc at /redoc, their assets under /docs/assets."""
    favicon = f"{ASSETS_URL}/favicon.png"

    @app.get(f"{ASSETS_URL}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in ASSET_NAMES:
            raise HTTPException(status_code=404)
        return FileResponse(ASSETS / name)

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{title} · Swagger UI",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=favicon,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{title} · ReDoc",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=favicon,
            with_google_fonts=False,  # fonts from a public host would not load offline either
        )

"""The API's documentation at /docs: Swagger UI from this server, under the UI's security headers.

FastAPI's own /docs loads Swagger UI from a CDN and starts it with an inline script: it fails
offline and cannot live under a CSP of `script-src 'self'`. Here the assets come from the
swagger-ui-bundle-v2 package (Swagger UI 5, which reads OpenAPI 3.1), mounted at /docs/assets,
and the start-up script is a file of ours (/ui/static/docs.js). /openapi.json is untouched.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – API</title>
<link rel="icon" href="/favicon.ico" sizes="any">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="/ui/static/docs.css">
<script src="{assets}/swagger-ui-bundle.js" defer></script>
<script src="/ui/static/docs.js" defer></script>
</head>
<body>
<main id="swagger-ui" data-url="{openapi}"></main>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve /docs and its assets; the app must be built with docs_url=None."""
    page = PAGE.format(title=app.title, assets=ASSETS_PATH, openapi=app.openapi_url)
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")
    app.add_api_route(DOCS_PATH, lambda: HTMLResponse(page), methods=["GET", "HEAD"], include_in_schema=False)

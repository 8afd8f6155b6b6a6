"""``GET /docs``: Swagger UI for ``/openapi.json`` on the public listener (daemon process, event loop).

The UI's files come from the installed ``swagger-ui-bundle-v2`` distribution (Swagger UI 5, which renders OpenAPI
3.1; the original ``swagger-ui-bundle`` ships 4.x, which refuses a 3.1 document), so nothing is fetched from a CDN:
the page links only the assets below, served from ``/docs/<asset>``, and ``validatorUrl: null`` keeps the UI from
sending the document to swagger.io's validator. Swagger UI is Apache-2.0; its licence is installed with the
distribution. Registered by ``tts_ops.http.openai.routes.register`` next to ``/openapi.json``.
"""

from __future__ import annotations

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed in the wheel

from tts_ops.http.middleware import json_error

DOCS_PATH = "/docs"

#: The files of the Swagger UI distribution the page uses, with their content types; nothing else is served (the
#: distribution's own index.html and initializer point at the petstore demo).
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

# Relative links (docs/..., openapi.json) so the page also works behind a reverse proxy that adds a path prefix.
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tts-ops API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null});
</script>
</body>
</html>
"""


async def handle_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def handle_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    content_type = ASSETS.get(name)
    if content_type is None:
        return json_error(404, f"no such asset: {name}")
    return web.FileResponse(swagger_ui_path / name,
                            headers={"Content-Type": content_type, "Cache-Control": "public, max-age=3600"})


async def handle_slash(request: web.Request) -> web.Response:
    """``/docs/`` -> ``/docs``: the page's asset links are relative to ``/docs``."""
    return web.Response(status=308, headers={"Location": DOCS_PATH})


def register(app: web.Application) -> None:
    """Add ``/docs`` and ``/docs/{asset}`` to the public app (before it starts)."""
    app.router.add_get(DOCS_PATH, handle_page)
    app.router.add_get(DOCS_PATH + "/", handle_slash)
    app.router.add_get(DOCS_PATH + "/{asset}", handle_asset)


__all__ = ["ASSETS", "DOCS_PATH", "register"]

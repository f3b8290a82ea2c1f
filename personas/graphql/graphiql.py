"""The GraphiQL page and its assets, all served by this server from files in the package."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent.parent / "static" / "graphiql"
ASSETS_PATH = "/graphiql"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # the stylesheets inline their icons and fonts as data: URLs
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

# Relative URLs: the page lives at /graphql, so they resolve under /graphiql/ also behind a
# proxy that mounts the API under a prefix.
PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Persona API · GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="graphiql/vendor/graphiql.min.css">
    <link rel="stylesheet" href="graphiql/vendor/graphiql-plugin-explorer.css">
    <link rel="stylesheet" href="graphiql/personas-graphiql.css">
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <script src="graphiql/vendor/react.production.min.js"></script>
    <script src="graphiql/vendor/react-dom.production.min.js"></script>
    <script src="graphiql/vendor/graphiql.min.js"></script>
    <script src="graphiql/vendor/graphiql-plugin-explorer.umd.js"></script>
    <script src="graphiql/personas-graphiql.js"></script>
  </body>
</html>
"""

PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def page() -> Response:
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


def assets() -> Mount:
    """The page's scripts, stylesheets and licences under /graphiql/."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS), name="graphiql")

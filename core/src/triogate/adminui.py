"""The admin UI: a static page under ``/ui/`` on the admin listener that reads the admin API.

The files (``triogate/ui/``: index.html, app.js, style.css, favicon.svg) ship in the core
package and are served without the token: they hold no data. The page asks for the admin
token and sends it as a bearer token to the JSON endpoints, which still require it. The
Content-Security-Policy allows nothing but the admin listener's own files (no inline script
or style, no other origin), so a value shown on the page (a route name, an error) cannot run
as code.
"""

from __future__ import annotations

from importlib import resources

from .messages import Response
from .problem import problem

__all__ = ["CSP", "UI_PREFIX", "is_ui_path", "serve_ui"]

UI_PREFIX = "/ui"
CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
_cache: dict[str, bytes] = {}


def is_ui_path(path: str) -> bool:
    """``/ui`` and everything under ``/ui/``: served without the token."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def _read(name: str) -> bytes:
    data = _cache.get(name)
    if data is None:
        data = _cache[name] = resources.files("triogate").joinpath("ui", name).read_bytes()
    return data


def serve_ui(method: str, path: str, request_id: str) -> Response:
    """One of the UI's files, a redirect from ``/ui`` to ``/ui/``, or a problem (404, 405)."""
    if method not in ("GET", "HEAD"):
        return problem(405, f"{method} is not allowed on {path}", request_id=request_id,
                       headers=[("allow", "GET, HEAD")])
    if path == UI_PREFIX:
        return Response(308, [("location", UI_PREFIX + "/"), ("content-length", "0")])
    name = path[len(UI_PREFIX) + 1:] or "index.html"
    ctype = _TYPES.get(name)
    if ctype is None:
        return problem(404, f"no admin UI file {path}", request_id=request_id)
    data = _read(name)
    return Response(200, [
        ("content-type", ctype),
        ("content-length", str(len(data))),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ], data)

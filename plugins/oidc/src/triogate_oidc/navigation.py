"""Which requests a login redirect may answer, and which return URLs are safe after it."""

from __future__ import annotations

from urllib.parse import quote

import triogate

__all__ = ["is_navigation", "safe_return"]


def is_navigation(req: triogate.Request) -> bool:
    """A browser loading a page (a redirect to the login makes sense), not a script or an API client.

    Not a navigation: a method other than GET/HEAD (a redirect would lose the body), an
    ``X-Requested-With: XMLHttpRequest``, a ``Sec-Fetch-Mode`` other than ``navigate`` (fetch(),
    images, scripts), or an ``Accept`` without ``text/html``. Those get a 401 instead.
    """
    if req.method not in ("GET", "HEAD"):
        return False
    h = req.headers
    if (h.get("x-requested-with") or "").lower() == "xmlhttprequest":
        return False
    mode = h.get("sec-fetch-mode")
    if mode is not None and mode.strip().lower() != "navigate":
        return False
    accept = ",".join(h.get_all("accept")).lower()
    return "text/html" in accept


def safe_return(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this origin, else ``default``: no open redirect after login.

    Only an absolute path is accepted: ``/x?y`` yes; ``//evil.example`` and ``/\\evil.example``
    (browsers read both as another host), ``https://evil.example``, ``javascript:...``, relative
    paths and anything with control characters or backslashes are replaced by ``default``.
    Non-ASCII characters (``rd`` arrives percent-decoded) are percent-encoded as UTF-8: a
    ``Location`` header holds ASCII only, and a raw ``U+3000`` used to fail the callback with a 500.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target):
        return default
    if target.startswith(("/%2f", "/%2F", "/%5c", "/%5C")):  # decoded by some servers into //
        return default
    if not target.isascii():
        target = "".join(c if c.isascii() else quote(c, safe="") for c in target)
    return target

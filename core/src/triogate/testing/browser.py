"""A cookie-keeping browser for tests of login flows: it follows redirects one hop at a time."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..upstream import Fetched, HTTPClient

__all__ = ["PAGE_HEADERS", "Browser"]

#: what a browser sends when it loads a page (a navigation)
PAGE_HEADERS = {"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8", "sec-fetch-mode": "navigate"}


class Browser:
    """An HTTP client that keeps cookies like a browser, over real sockets (the core's client).

    ``get(url, headers=None)`` sends one GET (page headers by default, :data:`PAGE_HEADERS`) with
    the cookies whose ``Path`` matches and stores the ``Set-Cookie`` answers (``Max-Age=0``
    deletes); ``visit(url)`` follows redirects hop by hop and returns every answer.
    ``cookies`` is ``{name: (value, path, the whole Set-Cookie line)}``: tests read and edit it
    (tamper with a value, drop a cookie). One jar for every host and port, as browsers keep
    cookies per host name (127.0.0.1) whatever the port; ``Domain`` and ``Secure`` are not
    enforced. ``http`` is the underlying :class:`~triogate.HTTPClient`; ``aclose()`` when done.
    """

    def __init__(self) -> None:
        self.http = HTTPClient(read_timeout=10.0)
        self.cookies: dict[str, tuple[str, str, str]] = {}  # name -> (value, path, the whole Set-Cookie)

    def cookie_header(self, path: str) -> str:
        return "; ".join(f"{n}={v}" for n, (v, p, _) in self.cookies.items()
                         if path == p or path.startswith(p.rstrip("/") + "/") or p == "/")

    def store(self, resp: Fetched) -> None:
        for line in resp.headers.get_all("set-cookie"):
            first, *attrs = [part.strip() for part in line.split(";")]
            name, _, value = first.partition("=")
            a = {k.lower(): v for k, _, v in (x.partition("=") for x in attrs)}
            if a.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = (value, a.get("path", "/"), line)

    async def get(self, url: str, headers: dict[str, str] | None = None) -> Fetched:
        hdrs = dict(PAGE_HEADERS if headers is None else headers)
        cookie = self.cookie_header(urlsplit(url).path or "/")
        if cookie:
            hdrs["cookie"] = cookie
        resp = await self.http.fetch("GET", url, headers=hdrs, timeout=10)
        self.store(resp)
        return resp

    async def visit(self, url: str, headers: dict[str, str] | None = None, hops: int = 8) -> list[Fetched]:
        """GET ``url`` and follow redirects (relative ones against the current URL) as a browser
        would, for at most ``hops`` requests; every answer, in order."""
        seen = []
        for _ in range(hops):
            resp = await self.get(url, headers)
            seen.append(resp)
            location = resp.headers.get("location")
            if resp.status not in (301, 302, 303, 307, 308) or location is None:
                break
            u = urlsplit(url)
            url = location if "://" in location else f"{u.scheme}://{u.netloc}{location}"
        return seen

    async def aclose(self) -> None:
        await self.http.aclose()

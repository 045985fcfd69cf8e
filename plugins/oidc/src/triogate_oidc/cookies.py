"""Reading and writing the plugin's cookies: the session (chunked when large) and the login cookies.

A session value longer than one cookie can hold is split into ``<name>_0``, ``<name>_1``, ...
(each value at most :data:`CHUNK_BYTES`, so name, value and attributes stay under the 4096
bytes browsers keep per cookie); a small one is the single cookie ``<name>``. Whenever a session
is written or cleared, every cookie of the other shape the browser sent is expired, so stale
chunks never mix with a new session.

Each started login has its own short-lived cookie ``<name>_login_<start of its state>``, sent
only to the callback path: logins started in several tabs at once all come back.
"""

from __future__ import annotations

import re

import triogate

__all__ = ["CHUNK_BYTES", "MAX_LOGINS", "MAX_RETURN_BYTES", "CookieJar", "SessionTooLarge", "read_cookies", "strip_cookies"]

CHUNK_BYTES = 3800
#: logins in progress a browser may hold; beyond, the callback expires every other one (a page that
#: sends the browser to many logins, each leaving a cookie, would otherwise grow the callback's
#: Cookie header past the gateway's limit: a 431 and no login until the cookies expire)
MAX_LOGINS = 8
#: longest return path kept in a login cookie (longer: "/"), so one login cookie stays well under 4 KB
MAX_RETURN_BYTES = 2048


class SessionTooLarge(Exception):
    """The sealed session needs more cookies than ``cookie_max_chunks`` allows."""


class CookieJar:
    """The cookie names and attributes of one plugin instance."""

    def __init__(self, name: str, *, secure: bool, domain: str | None, path: str, max_chunks: int,
                 login_path: str) -> None:
        self.name = name
        self.login_prefix = f"{name}_login_"
        self.secure = secure
        self.domain = domain
        self.path = path
        self.max_chunks = max_chunks
        # the login cookie is only sent to the callback; a __Host- cookie must have Path=/ (else browsers drop it)
        self.login_path = "/" if name.lower().startswith("__host-") else login_path
        self._chunk = re.compile(re.escape(name) + r"_(\d+)")

    def owns(self, cookie: str) -> bool:
        """True for the cookies of this plugin instance (removed before the request goes upstream)."""
        return cookie == self.name or cookie.startswith(self.login_prefix) or self._chunk.fullmatch(cookie) is not None

    def login_name(self, state: str) -> str:
        return self.login_prefix + state[:12]

    # ------------------------------------------------------------------ reading

    def session_value(self, jar: dict[str, str]) -> str | None:
        """The sealed session: the single cookie, or the chunks joined in order (a gap ends them)."""
        if self.name in jar:
            return jar[self.name]
        parts = []
        for i in range(self.max_chunks):
            part = jar.get(f"{self.name}_{i}")
            if part is None:
                break
            parts.append(part)
        return "".join(parts) or None

    def sent_login_cookies(self, jar: dict[str, str]) -> set[str]:
        return {n for n in jar if n.startswith(self.login_prefix)}

    def sent_session_cookies(self, jar: dict[str, str]) -> set[str]:
        return {n for n in jar if n == self.name or self._chunk.fullmatch(n)}

    # ------------------------------------------------------------------ writing

    def _attrs(self, path: str, max_age: int, *, lax: bool = True) -> str:
        out = f"; Path={path}; Max-Age={max_age}; HttpOnly"
        if lax:
            out += "; SameSite=Lax"
        if self.secure:
            out += "; Secure"
        if self.domain:
            out += f"; Domain={self.domain}"
        return out

    def set_session(self, value: str, max_age: float, sent: set[str]) -> list[str]:
        """``Set-Cookie`` values storing ``value``, expiring the session cookies sent before that it does not reuse."""
        age = max(round(max_age), 1)
        if len(value) <= CHUNK_BYTES:
            names = [self.name]
            parts = [value]
        else:
            parts = [value[i:i + CHUNK_BYTES] for i in range(0, len(value), CHUNK_BYTES)]
            if len(parts) > self.max_chunks:
                raise SessionTooLarge(f"the session needs {len(parts)} cookies, cookie_max_chunks is {self.max_chunks}")
            names = [f"{self.name}_{i}" for i in range(len(parts))]
        out = [f"{n}={p}{self._attrs(self.path, age)}" for n, p in zip(names, parts, strict=True)]
        out += self.clear_session(sent - set(names))
        return out

    def clear_session(self, sent: set[str]) -> list[str]:
        return [f"{n}={self._attrs(self.path, 0)}" for n in sorted(sent)]

    def set_login(self, state: str, value: str, max_age: float) -> str:
        # SameSite=Lax: the provider's redirect back is a top-level GET navigation, so it is sent
        return f"{self.login_name(state)}={value}{self._attrs(self.login_path, max(int(max_age), 1))}"

    def clear_login(self, name: str) -> str:
        return f"{name}={self._attrs(self.login_path, 0)}"


def read_cookies(req: triogate.Request) -> dict[str, str]:
    """``name -> value`` of the request's cookies, split on ``;`` and ``=`` only (the first of a name wins).

    Not ``http.cookies``: it gives up on a whole header at the first value it finds malformed
    (JSON, spaces), and one such cookie of another application would hide the session with it.
    """
    jar: dict[str, str] = {}
    for value in req.headers.get_all("cookie"):
        for part in value.split(";"):
            name, eq, val = part.partition("=")
            name = name.strip()
            if eq and name and name not in jar:
                jar[name] = val.strip()
    return jar


def strip_cookies(req: triogate.Request, jar: CookieJar) -> None:
    """Remove this plugin's cookies from the request: the upstream never sees the sealed session."""
    values = req.headers.get_all("cookie")
    if not values:
        return
    kept = [part.strip() for value in values for part in value.split(";")
            if part.strip() and not jar.owns(part.split("=", 1)[0].strip())]
    req.headers.remove("cookie")
    if kept:
        req.headers.add("cookie", "; ".join(kept))

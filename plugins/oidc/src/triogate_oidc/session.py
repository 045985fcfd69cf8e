"""What a session and a started login hold (sealed into cookies, never readable by the browser)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import attrs

__all__ = ["Login", "Session", "session_from_tokens"]


@attrs.define
class Session:
    """A logged-in browser: the tokens and when they and the session end.

    The ID token's claims are not stored twice: it was verified at login (or refresh), and the
    cookie is authenticated, so its payload is read back as is (:meth:`claims`).
    """

    sid: str
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: float | None  # of the access token (epoch seconds); None: not said
    started: float  # login time; the session ends session_lifetime after it
    scope: str = ""

    def to_payload(self) -> dict[str, Any]:
        return {"sid": self.sid, "id": self.id_token, "at": self.access_token, "rt": self.refresh_token,
                "exp": self.expires_at, "t0": self.started, "sc": self.scope}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Session | None:
        try:
            s = cls(data["sid"], data["id"], data["at"], data.get("rt"), data.get("exp"), data["t0"], data.get("sc", ""))
        except (KeyError, TypeError):
            return None
        ok = (isinstance(s.sid, str) and isinstance(s.id_token, str) and isinstance(s.access_token, str)
              and isinstance(s.started, (int, float)) and isinstance(s.scope, str)
              and (s.refresh_token is None or isinstance(s.refresh_token, str))
              and (s.expires_at is None or isinstance(s.expires_at, (int, float))))
        return s if ok else None

    def claims(self) -> dict[str, Any]:
        try:
            part = self.id_token.split(".")[1]
            data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (IndexError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def subject(self) -> str | None:
        sub = self.claims().get("sub")
        return sub if isinstance(sub, str) else None


def _expires_at(tokens: dict[str, Any], claims: dict[str, Any], now: float) -> float | None:
    ttl = tokens.get("expires_in")
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl > 0:
        return now + float(ttl)
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def session_from_tokens(tokens: dict[str, Any], claims: dict[str, Any], *, previous: Session | None = None) -> Session:
    """A session from a token response whose ID token (``claims``) was verified.

    After a refresh (``previous``) the session keeps its id and start, and the old ID token and
    refresh token when the provider sent no new ones (OIDC Core §12.2 makes both optional).
    """
    now = time.time()
    id_token = tokens.get("id_token") if isinstance(tokens.get("id_token"), str) else None
    refresh = tokens.get("refresh_token") if isinstance(tokens.get("refresh_token"), str) else None
    scope = tokens.get("scope") if isinstance(tokens.get("scope"), str) else None
    if previous is None:
        assert id_token is not None
        return Session(secrets.token_urlsafe(12), id_token, tokens["access_token"], refresh,
                       _expires_at(tokens, claims, now), now, scope or "")
    return Session(previous.sid, id_token or previous.id_token, tokens["access_token"],
                   refresh or previous.refresh_token, _expires_at(tokens, claims, now), previous.started,
                   scope if scope is not None else previous.scope)


@attrs.define
class Login:
    """A started login: what the callback must match (state), send (PKCE verifier, redirect URI)
    and check (nonce), and where the browser goes afterwards."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    return_to: str
    expires: float

    def to_payload(self) -> dict[str, Any]:
        return {"s": self.state, "n": self.nonce, "v": self.verifier, "u": self.redirect_uri, "r": self.return_to,
                "e": self.expires}

    @classmethod
    def from_payload(cls, data: Any) -> Login | None:
        if not isinstance(data, dict):
            return None
        try:
            login = cls(data["s"], data["n"], data["v"], data["u"], data["r"], data["e"])
        except KeyError:
            return None
        fields = (login.state, login.nonce, login.verifier, login.redirect_uri, login.return_to)
        if not all(isinstance(f, str) for f in fields) or not isinstance(login.expires, (int, float)):
            return None
        return login

    @classmethod
    def new(cls, redirect_uri: str, return_to: str, ttl: float) -> Login:
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), redirect_uri,
                   return_to, time.time() + ttl)

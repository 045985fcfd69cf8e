"""The oidc plugin: an OpenID Connect relying party for the browser apps behind a route.

In the auth phase it answers its own paths (login, the provider's callback, logout) and
otherwise reads the session cookie: a valid session sets ``ctx.principal`` and the claim
headers; no session sends a browser navigation to the provider's login (authorization code
with PKCE, ``state`` and ``nonce``) and leaves everything else to the core's 401, so API
clients on the same route can authenticate with ``jwt`` (several auth plugins are an OR).

Sessions (in the cookie or in Redis, and their refresh) live in :mod:`.sessions`, the provider's
endpoints and ID token checks in :mod:`.provider`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import triogate
from triogate.auth import (
    claim,
    claim_header_value,
    consumer_principal,
    is_authenticated,
    map_subjects,
    missing_credential,
    note_outcome,
    reject_credential,
    set_consumer_headers,
    word_set,
)
from triogate.jwks import running_source
from triogate_redis import shared_client

from .cipher import CookieCipher
from .config import OidcConfig
from .cookies import MAX_LOGINS, MAX_RETURN_BYTES, CookieJar, SessionTooLarge, read_cookies, strip_cookies
from .navigation import is_navigation, safe_return
from .provider import LoginRejected, Provider, ProviderError
from .session import Login, session_from_tokens
from .sessions import Sessions
from .store import RedisSessions, RedisUnavailable

__all__ = ["OidcPlugin"]

log = logging.getLogger("triogate.oidc")
COOKIES = "triogate_oidc.set_cookie"  # ctx.state: Set-Cookie values for the response
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def _pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _redirect(location: str, cookies: list[str]) -> triogate.Response:
    headers = [("location", location), ("cache-control", "no-store"), ("content-length", "0")]
    headers += [("set-cookie", c) for c in cookies]
    return triogate.Response(302, headers)


class OidcPlugin(triogate.Plugin):
    # after every other auth plugin (jwt 1450, key-auth 1250, basic-auth 1100): a request one of
    # them authenticated is not sent to the login page
    priority = 1050
    Config = OidcConfig
    credential_secrets = frozenset()  # [consumers.*.credentials.oidc] holds subjects only

    def __init__(self, config: OidcConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        c = config
        self.cipher = CookieCipher(c.cookie_keys)
        self.jar = CookieJar(c.cookie_name, secure=c.cookie_secure, domain=c.cookie_domain, path=c.cookie_path,
                             max_chunks=c.cookie_max_chunks, login_path=c.redirect_path)
        # AEAD associated data: a sealed login is good for this provider and client only
        self.login_purpose = f"login|{c.issuer}|{c.client_id}|{c.cookie_name}"
        self.sessions = Sessions(c, self.cipher, self.jar, self.instance_name)
        self.claim_headers = [(name, h.lower()) for name, h in c.claims_to_headers.items()]
        self.subjects = self._consumer_subjects(gateway.credentials("oidc"))
        self.challenge = f'Cookie realm="{c.realm}", login="{c.login_path}"'
        self.provider: Provider | None = None  # set in startup

    def identity_headers(self) -> list[str]:
        """The claims_to_headers targets: the core removes client copies before any plugin runs."""
        return [h for _, h in self.claim_headers]

    def _consumer_subjects(self, credentials: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for consumer, table in credentials.items():
            where = f"consumers.{consumer}.credentials.oidc"
            if not isinstance(table, dict) or set(table) != {"subject"}:
                raise ValueError(f'{where}: expected a table with subject = "..." (or [...])')
            if not self.config.consumer_claim:
                continue
            map_subjects(where, table["subject"], consumer, out)
        return out

    @triogate.hookimpl
    async def startup(self, gateway: triogate.GatewayServices) -> None:
        """One provider (metadata, keys and their refresher) per issuer and settings, shared by every instance."""
        c = self.config
        settings = {"jwks_uri": None, "issuer": c.issuer, "ttl": c.jwks_ttl,
                    "min_interval": c.jwks_refresh_min_interval, "timeout": c.http_timeout}
        key = ("triogate_oidc", "provider", *settings.values())
        source = await gateway.shared(key, lambda: running_source(gateway.http, **settings))
        self.provider = self.sessions.provider = Provider(c, gateway.http, source)
        if c.session_store == "redis":
            client = await shared_client(gateway, c.redis, name="oidc")
            self.sessions.store = RedisSessions(client, c.redis.key_prefix)

    # ------------------------------------------------------------------ helpers

    def _redirect_uri(self, req: triogate.Request) -> str | None:
        base = self.config.base_url
        if base is None:
            if not req.authority:
                return None
            base = f"{req.scheme}://{req.authority}"
        return base.rstrip("/") + self.config.redirect_path

    def _login(self, jar: dict[str, str], state: str) -> Login | None:
        """The started login whose state the callback names, from its sealed cookie; None if unknown or expired."""
        if not state:
            return None
        value = jar.get(self.jar.login_name(state))
        data = self.cipher.open(value, self.login_purpose) if value else None
        login = Login.from_payload(data.get("login")) if data else None
        if login is None or login.expires <= time.time() or not hmac.compare_digest(login.state, state):
            return None
        return login

    def _store_down(self, ctx: triogate.Context, exc: RedisUnavailable) -> triogate.Response:
        log.warning("oidc %s: session store unavailable: %s", self.instance_name, exc)
        note_outcome(ctx, "oidc:store_unavailable")
        return ctx.problem(503, "the session store is unavailable; try again shortly")

    def _unavailable(self, ctx: triogate.Context, exc: ProviderError) -> triogate.Response:
        log.warning("oidc %s: identity provider unavailable: %s", self.instance_name, exc)
        note_outcome(ctx, "oidc:provider_unavailable")
        return ctx.problem(503, "the identity provider is unavailable; try again shortly")

    # ------------------------------------------------------------------ login

    async def _start_login(self, ctx: triogate.Context, return_to: str, cookies: list[str]) -> triogate.Response:
        c = self.config
        assert self.provider is not None
        try:
            endpoint = await self.provider.endpoint("authorization_endpoint")
        except ProviderError as exc:
            return self._unavailable(ctx, exc)
        redirect_uri = self._redirect_uri(ctx.request)
        if redirect_uri is None:
            return ctx.problem(400, "the request has no Host to return to after login")
        if len(return_to) > MAX_RETURN_BYTES:
            return_to = "/"
        login = Login.new(redirect_uri, return_to, c.login_timeout)
        sealed = self.cipher.seal({"login": login.to_payload()}, self.login_purpose, c.login_timeout)
        params = {**c.extra_auth_params, "response_type": "code", "client_id": c.client_id,
                  "redirect_uri": redirect_uri, "scope": " ".join(c.scopes), "state": login.state,
                  "nonce": login.nonce, "code_challenge": _pkce_challenge(login.verifier),
                  "code_challenge_method": "S256"}
        sep = "&" if "?" in endpoint else "?"
        note_outcome(ctx, "oidc:login_redirect")
        return _redirect(endpoint + sep + urlencode(params),
                         [*cookies, self.jar.set_login(login.state, sealed, c.login_timeout)])

    async def _callback(self, ctx: triogate.Context) -> triogate.Response:
        req = ctx.request
        if req.method not in ("GET", "HEAD"):
            return ctx.problem(405, "the login callback takes GET", headers=[("allow", "GET, HEAD")])
        query = dict(parse_qsl(req.query, keep_blank_values=True))
        jar = read_cookies(req)
        state = query.get("state", "")
        login = self._login(jar, state)
        if login is None:  # forged, replayed, expired, or the login cookie was never sent back
            note_outcome(ctx, "oidc:bad_state")
            return ctx.problem(400, "unknown or expired login (state does not match); start again",
                               headers=[("cache-control", "no-store")])
        spent = self.jar.login_name(state)
        cookies = [self.jar.clear_login(spent)]  # the state is spent whatever happens next
        others = self.jar.sent_login_cookies(jar) - {spent}
        if len(others) >= MAX_LOGINS:  # a cookie bomb of started logins: they all go
            cookies += [self.jar.clear_login(n) for n in sorted(others)]

        def fail(status: int, detail: str, outcome: str) -> triogate.Response:
            note_outcome(ctx, f"oidc:{outcome}")
            headers = [("cache-control", "no-store")] + [("set-cookie", v) for v in cookies]
            return ctx.problem(status, detail, headers=headers)

        error = query.get("error")
        if error is not None:
            code = error if _ERROR_CODE.fullmatch(error) else "invalid"
            return fail(401, f"the identity provider did not log you in ({code})", f"provider_{code}")
        code = query.get("code")
        if not code:
            return fail(400, "the callback has no code", "no_code")
        assert self.provider is not None
        try:
            tokens = await self.provider.exchange_code(code, login.redirect_uri, login.verifier)
            id_token = tokens.get("id_token")
            if not isinstance(id_token, str):
                raise LoginRejected("no_id_token")
            claims = await self.provider.verify_id_token(id_token, nonce=login.nonce)
        except LoginRejected as exc:
            return fail(401, "the login could not be verified; start again", exc.reason)
        except ProviderError as exc:
            log.warning("oidc %s: login failed at the identity provider: %s", self.instance_name, exc)
            return fail(502, "the identity provider failed to complete the login", "provider_error")
        session = session_from_tokens(tokens, claims)
        try:
            cookies += await self.sessions.write(session, self.jar.sent_session_cookies(jar))
        except SessionTooLarge as exc:
            log.error("oidc %s: %s; raise cookie_max_chunks, ask for fewer scopes/claims, or use "
                      'session_store = "redis"', self.instance_name, exc)
            return fail(502, "the session is too large to store", "session_too_large")
        except RedisUnavailable as exc:
            log.warning("oidc %s: session store unavailable: %s", self.instance_name, exc)
            return fail(503, "the session store is unavailable; try again shortly", "store_unavailable")
        note_outcome(ctx, "oidc:login")
        return _redirect(safe_return(login.return_to), cookies)

    async def _logout(self, ctx: triogate.Context) -> triogate.Response:
        c = self.config
        if (ctx.request.headers.get("sec-fetch-site") or "").strip().lower() == "cross-site":
            # logout CSRF: another site's <img src>, form or link must not end the session (and, through
            # id_token_hint, the provider's); browsers send Sec-Fetch-Site, non-browser clients are unaffected
            note_outcome(ctx, "oidc:cross_site_logout")
            return ctx.problem(403, "logout from another site is refused; use the application's logout link",
                               headers=[("cache-control", "no-store")])
        jar = read_cookies(ctx.request)
        try:
            session, _ = await self.sessions.read(jar)
            if session is not None and self.sessions.store is not None:
                await self.sessions.store.delete(session.sid)  # every copy of the cookie ends with it
        except RedisUnavailable as exc:
            log.warning("oidc %s: logout could not delete the stored session: %s", self.instance_name, exc)
            session = None
        cookies = self.jar.clear_session(self.jar.sent_session_cookies(jar))
        if session is not None:
            self.sessions.forget(session.sid)
        note_outcome(ctx, "oidc:logout")
        end_session = None
        if self.provider is not None:
            try:
                end_session = await self.provider.endpoint("end_session_endpoint")
            except ProviderError:
                end_session = None  # logged out here all the same
        if end_session is None:
            return _redirect(c.logout_redirect, cookies)
        params = {"client_id": c.client_id}
        if session is not None:
            params["id_token_hint"] = session.id_token
        if c.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = c.post_logout_redirect_uri
        sep = "&" if "?" in end_session else "?"
        return _redirect(end_session + sep + urlencode(params), cookies)

    # ------------------------------------------------------------------ the auth phase

    def _no_session(self, ctx: triogate.Context, cookies: list[str], *, rejected: bool) -> None:
        if rejected:
            reject_credential(ctx, self.challenge, "oidc:invalid_session")
        else:
            missing_credential(ctx, self.challenge, anonymous=None, method="oidc")
        if cookies:
            ctx.state[COOKIES] = cookies

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> triogate.Response | None:
        c = self.config
        req = ctx.request
        path = req.path
        if path == c.redirect_path:
            return await self._callback(ctx)
        if path == c.logout_path:
            return await self._logout(ctx)
        if path == c.login_path and req.method in ("GET", "HEAD"):
            rd = dict(parse_qsl(req.query)).get("rd")
            return await self._start_login(ctx, safe_return(rd), [])
        jar = read_cookies(req)
        strip_cookies(req, self.jar)
        if is_authenticated(ctx):
            return None  # an earlier auth plugin authenticated this request
        sent = self.jar.sent_session_cookies(jar)
        try:
            session, rejected = await self.sessions.read(jar)
        except RedisUnavailable as exc:
            return self._store_down(ctx, exc)
        clear = self.jar.clear_session(sent) if sent and session is None else []
        now = time.time()
        if session is not None and session.started + c.session_lifetime <= now:
            session, clear = None, self.jar.clear_session(sent)
        if session is not None and session.expires_at is not None:
            if session.refresh_token and now >= session.expires_at - c.refresh_margin:
                try:
                    refreshed = await self.sessions.refresh(session)
                except ProviderError as exc:
                    if now < session.expires_at:  # still valid: serve it, refresh next time
                        log.warning("oidc %s: refresh failed, keeping the session: %s", self.instance_name, exc)
                        refreshed = session
                    else:
                        return self._unavailable(ctx, exc)
                except RedisUnavailable as exc:
                    return self._store_down(ctx, exc)
                if refreshed is None:
                    session, clear = None, self.jar.clear_session(sent)
                    note_outcome(ctx, "oidc:refresh_refused")
                elif refreshed is not session:
                    if self.sessions.store is None:  # a stored session's cookie (its id) stays the same
                        try:
                            ctx.state[COOKIES] = await self.sessions.write(refreshed, sent)
                        except SessionTooLarge as exc:
                            log.error("oidc %s: %s", self.instance_name, exc)
                            return ctx.problem(502, "the session is too large to store")
                    session = refreshed
            elif not session.refresh_token and now >= session.expires_at:
                session, clear = None, self.jar.clear_session(sent)
                note_outcome(ctx, "oidc:session_expired")
        if session is None:
            if is_navigation(req):
                return await self._start_login(ctx, safe_return(req.raw_path + ("?" + req.query if req.query else "")),
                                               clear)
            self._no_session(ctx, clear, rejected=rejected)
            return None
        claims = session.claims()
        sub = claims.get("sub")
        consumer = None
        if c.consumer_claim:
            who = claim(claims, c.consumer_claim)
            consumer = self.subjects.get(who) if isinstance(who, str) else None
        ctx.principal = consumer_principal(self.gateway, consumer, method="oidc",
                                           credential=sub if isinstance(sub, str) else None, claims=claims,
                                           scopes=word_set(session.scope))
        for name, header in self.claim_headers:
            hv = claim_header_value(claim(claims, name))
            if hv is not None:
                req.headers.add(header, hv)
        if c.pass_access_token:
            req.headers.set("authorization", f"Bearer {session.access_token}")
        return None

    @triogate.hookimpl
    async def transform(self, ctx: triogate.Context) -> None:
        if self.config.consumer_headers:
            set_consumer_headers(ctx)

    @triogate.hookimpl
    async def post_response(self, ctx: triogate.Context, response: triogate.Response) -> None:
        for value in ctx.state.pop(COOKIES, ()):
            response.headers.add("set-cookie", value)

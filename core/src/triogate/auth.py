"""Helpers for auth plugins, so that several of them on one route behave as one OR.

The core runs every auth plugin of a route in priority order and answers 401 with all
recorded challenges if none set ``ctx.principal``. That only works if each plugin follows
the same conventions, which live here once rather than copied into every plugin:

- **A real credential beats an anonymous one.** An anonymous principal (a plugin's
  ``anonymous = "<consumer>"`` fallback, granted when the request carried no credential for
  it) never stops a later plugin from authenticating the request (:func:`is_authenticated`).
- **An invalid credential cancels every anonymous fallback.** A plugin that rejects a
  presented credential marks the request with :data:`AUTH_FAILED` and withdraws an anonymous
  principal an earlier plugin granted (:func:`reject_credential`); no later plugin grants
  one (:func:`missing_credential`). Otherwise a wrong password would quietly become guest
  access.
- **The upstream learns who the final consumer is** from :data:`CONSUMER_HEADERS`, set in the
  ``transform`` phase (after every auth plugin had its turn) by :func:`set_consumer_headers`.
  The core removes client-sent copies at admission, before any plugin runs (with every
  :data:`IDENTITY_HEADERS` field, anything starting with ``x-consumer-`` and every header a
  plugin declares with :meth:`triogate.Plugin.identity_headers`), so they can never be spoofed.
- **Why authentication failed goes to the access log** as ``authn`` (:func:`note_outcome`),
  never the credential itself.

Bearer tokens (jwt, oauth2-introspection, your own) are found in headers, cookies or the
query string with :func:`find_token` and removed before forwarding with :func:`strip_token`;
claims become principals and upstream headers with :func:`claim`, :func:`word_set` and
:func:`claim_header_value`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, unquote_plus

from .messages import Principal

if TYPE_CHECKING:
    from .context import Context, GatewayServices
    from .messages import Request

__all__ = [
    "AUTH_FAILED", "CONSUMER_HEADERS", "IDENTITY_HEADERS", "IDENTITY_PREFIX", "MAX_NUMERIC_DATE", "FoundToken",
    "check_anonymous", "claim", "claim_header_value", "consumer_principal", "find_token", "invalid_time_claim",
    "is_authenticated", "map_subjects", "missing_credential", "note_outcome",
    "reject_credential", "set_consumer_headers", "strip_query_params", "strip_token", "word_set",
]

#: ``ctx.state`` key set (to True) when a presented credential was invalid: no auth plugin
#: grants its anonymous consumer to such a request.
AUTH_FAILED = "triogate.auth_failed"

#: headers telling the upstream who the consumer is (:func:`set_consumer_headers`); the gateway
#: vouches for them, so the core removes client-sent copies at admission.
CONSUMER_HEADERS = ("x-consumer-username", "x-consumer-custom-id", "x-anonymous-consumer")

#: every header name the core reserves for identity, whichever plugins are loaded (Kong's names
#: included, so an upstream migrated from Kong is not fooled either): a client never sets them.
IDENTITY_HEADERS = CONSUMER_HEADERS + ("x-consumer-id", "x-consumer-groups", "x-credential-identifier")

#: and any request header whose name starts with this is removed from the client's request too
IDENTITY_PREFIX = "x-consumer-"


# --------------------------------------------------------------------------- outcomes


def note_outcome(ctx: Context, outcome: str) -> None:
    """Add ``outcome`` (e.g. ``"jwt:expired"``) to the access log's ``authn`` field.

    Several plugins may fail on one request; their outcomes are comma-joined so the log
    line says why each one did not authenticate. Never pass the credential itself.
    """
    prev = ctx.log_extra.get("authn")
    ctx.log_extra["authn"] = f"{prev}, {outcome}" if prev else outcome


def is_authenticated(ctx: Context) -> bool:
    """True when an earlier plugin already authenticated the request with a real credential.

    An anonymous principal does not count: a later plugin may still replace it.
    """
    p = ctx.principal
    return p is not None and not p.anonymous


def check_anonymous(gateway: GatewayServices, name: str | None) -> str | None:
    """``name`` when it is a configured consumer (or None); ``ValueError`` otherwise.

    Call it in ``__init__``, so a typo in ``anonymous = "..."`` is a config error at load time
    rather than a ``KeyError`` on the first request without credentials.
    """
    if name is not None and name not in gateway.consumers:
        raise ValueError(f"anonymous: no consumer named {name!r} in [consumers]")
    return name


def consumer_principal(
    gateway: GatewayServices, consumer: str | None, *, method: str, credential: str | None = None,
    claims: dict[str, Any] | None = None, scopes: Iterable[str] = (), anonymous: bool = False,
) -> Principal:
    """A :class:`~triogate.Principal` carrying the groups of ``consumer`` (none when it is None).

    Groups come from ``[consumers.<name>]``, so acl and per-group policies judge a consumer the
    same whichever plugin authenticated it.
    """
    groups = gateway.consumers[consumer].groups if consumer is not None else ()
    return Principal(consumer=consumer, credential=credential, claims=claims, scopes=frozenset(scopes),
                     groups=groups, anonymous=anonymous, method=method)


def map_subjects(where: str, subject: Any, consumer: str, out: dict[str, str]) -> None:
    """Add a credential table's ``subject`` (a string or a list of them) to ``out`` (subject → consumer).

    For plugins whose consumers are named by a token's subject (jwt, oidc): a subject that already
    belongs to another consumer is a config error (``ValueError`` with the key path ``where``), since
    a token could then not say whose it is.
    """
    subjects = subject if isinstance(subject, list) else [subject]
    for s in subjects:
        if not isinstance(s, str) or not s:
            raise ValueError(f"{where}.subject: expected strings")
        if out.setdefault(s, consumer) != consumer:
            raise ValueError(f"{where}.subject: {s!r} already belongs to consumer {out[s]!r}")


def missing_credential(ctx: Context, challenge: str, *, anonymous: str | None, method: str) -> None:
    """The request carried no credential for this plugin: record its challenge and maybe go anonymous.

    The challenge is sent only if no plugin authenticates the request. The ``anonymous``
    consumer (validated with :func:`check_anonymous`) is granted unless another plugin already
    set a principal or rejected a presented credential (:data:`AUTH_FAILED`).
    """
    ctx.challenge(challenge)
    if anonymous is not None and ctx.principal is None and not ctx.state.get(AUTH_FAILED):
        ctx.principal = consumer_principal(ctx.gateway, anonymous, method=method, anonymous=True)


def reject_credential(ctx: Context, challenge: str, outcome: str) -> None:
    """A presented credential is invalid: log why, record the challenge, cancel anonymous access.

    This does not end the auth phase: a later plugin may still authenticate the request with
    another credential; if none does, the core answers 401 with every challenge.
    """
    note_outcome(ctx, outcome)
    ctx.state[AUTH_FAILED] = True
    ctx.challenge(challenge)
    if ctx.principal is not None and ctx.principal.anonymous:
        ctx.principal = None


def set_consumer_headers(ctx: Context) -> None:
    """Tell the upstream who the final consumer is (:data:`CONSUMER_HEADERS`).

    Call it from ``transform``, which runs after the whole auth phase, so the headers name the
    principal that won rather than the one a plugin saw on its turn. Nothing is set for a
    principal without a configured consumer (e.g. a token whose subject maps to none).
    """
    p = ctx.principal
    consumer = ctx.gateway.consumers.get(p.consumer) if p is not None and p.consumer else None
    if p is None or consumer is None:
        return
    h = ctx.request.headers
    h.set("x-consumer-username", p.consumer)  # type: ignore[arg-type]
    if consumer.custom_id:
        h.set("x-consumer-custom-id", consumer.custom_id)
    if p.anonymous:
        h.set("x-anonymous-consumer", "true")


# --------------------------------------------------------------------------- bearer tokens


class FoundToken(NamedTuple):
    """Where :func:`find_token` found a token: ``where`` is ``"header"``, ``"cookie"`` or ``"query"``."""

    token: str
    where: str
    name: str


def find_token(
    req: Request, header_names: Sequence[str], cookie_names: Sequence[str] = (), query_params: Sequence[str] = (),
) -> FoundToken | None:
    """The first token in header → cookie → query order, or None.

    ``authorization`` must hold ``Bearer <token>`` (RFC 6750 §2.1); another header may hold
    ``Bearer <token>`` or the bare token. Empty values are not tokens. Query parameters come
    last because URLs end up in logs (RFC 6750 §2.3 discourages them).
    """
    headers = req.headers
    for name in header_names:
        value = headers.get(name)
        if value is None:
            continue
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return FoundToken(rest.strip(), "header", name)
        if name != "authorization" and value.strip() and not rest:
            return FoundToken(value.strip(), "header", name)
    if cookie_names and "cookie" in headers:
        jar = req.cookies()
        for name in cookie_names:
            if jar.get(name):
                return FoundToken(jar[name], "cookie", name)
    if query_params and req.query:
        params = dict(parse_qsl(req.query, keep_blank_values=False))
        for name in query_params:
            if params.get(name):
                return FoundToken(params[name], "query", name)
    return None


def strip_token(req: Request, found: FoundToken) -> None:
    """Remove the credential from where it was found, leaving everything else as sent.

    The upstream should never see a credential meant for the gateway (it could replay it);
    other cookies and query parameters pass through untouched.
    """
    where, name = found.where, found.name
    if where == "header":
        req.headers.remove(name)
    elif where == "cookie":
        kept = []
        for value in req.headers.get_all("cookie"):
            for part in value.split(";"):
                if part.strip() and part.split("=", 1)[0].strip() != name:
                    kept.append(part.strip())
        req.headers.remove("cookie")
        if kept:
            req.headers.add("cookie", "; ".join(kept))
    elif where == "query":
        strip_query_params(req, (name,))


def strip_query_params(req: Request, names: Collection[str]) -> None:
    """Remove every query parameter named in ``names``; the rest keeps its exact encoding."""
    req.query = "&".join(p for p in req.query.split("&") if p and unquote_plus(p.split("=", 1)[0]) not in names)


# --------------------------------------------------------------------------- claims


def claim(claims: dict[str, Any], path: str) -> Any:
    """``claims["a"]["b"]`` for ``"a.b"`` (a claim literally named ``"a.b"`` wins); None when absent.

    Identity providers nest roles and groups (Keycloak's ``realm_access.roles``); config
    names them by a dotted path.
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def word_set(value: Any) -> frozenset[str]:
    """A space-separated string (``scope``) or a list of strings (``scp``, ``roles``) as a set.

    Anything else (absent, a number, an object) is the empty set, never an error: a token's
    claims are data from outside.
    """
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


#: 9999-12-31T23:59:59Z: the last second a datetime (and most peers reading a claim) can represent.
MAX_NUMERIC_DATE = 253402300799


def invalid_time_claim(claims: dict[str, Any], names: Sequence[str] = ("exp", "nbf", "iat")) -> str | None:
    """The first of ``names`` present but not a sane NumericDate (RFC 7519 §2), or None.

    A sane one is a number (not a bool) of seconds between 1970 and the year 9999. PyJWT and
    introspection servers pass on whatever number they got (``exp = 10**400``, ``1e300``,
    ``NaN``); such a value is no date, overflows float arithmetic (lifetimes, cache expiry)
    and ``datetime`` wherever the claims are read later, so it makes the token invalid.
    """
    for name in names:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_NUMERIC_DATE:
            return name
    return None


def claim_header_value(value: Any) -> bytes | None:
    """A claim as one upstream header value, or None when absent or unsafe.

    Scalars as text, lists of scalars comma-joined, anything else as compact JSON (UTF-8).
    A value with CR, LF, NUL or another control character (tab aside) is refused: it could
    inject headers into the upstream request.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    elif isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        text = ",".join(str(v) for v in value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    raw = text.encode("utf-8")
    if any(b < 0x20 and b != 0x09 or b == 0x7F for b in raw):
        return None
    return raw

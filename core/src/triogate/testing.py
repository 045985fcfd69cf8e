"""Test kit for triogate and its plugins: a pytest plugin (``pytest11`` entry point).

Everything runs for real on loopback: a gateway started from a config dict or
TOML string on a free port, programmable upstream servers that record what they
receive, and a client bound to the gateway.

Fixtures (pytest-trio):

- ``upstream``: a started :class:`UpstreamServer` that echoes each request as JSON.
- ``upstream_factory``: ``await upstream_factory(handler=None)`` starts another one.
- ``gateway_factory``: ``await gateway_factory(config, plugins={...}, hooks=[module])``
  returns a :class:`RunningGateway` (``.url``, ``.client``, ``.reload()``).
- ``plugin_registry``: an empty :class:`~triogate.plugins.PluginRegistry` to register into.
- ``identity_provider``: a started :class:`IdentityProvider` (JWKS, OIDC discovery, introspection).
- ``redis_server``: a real ``redis-server`` on a free port.
- from pytest-trio: ``nursery``, ``autojump_clock`` and ``mock_clock`` (the gateway, fixture
  upstreams and the client share the test's trio run, so they all follow the virtual clock).

Helpers: :func:`plugin_config` (schema tests), :func:`raw_request`, :func:`start_gateway`,
:func:`free_port`, :class:`ResetConnection`, :class:`GatewayProcess` (``triogate run`` in a
child process, for signals, workers and pid files). Every fixture with an example: docs/testing.md.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Self

import pytest
import trio

from .app import Gateway, serve
from .config import Config, parse_config, structure
from .devserver import Handler, ResetConnection, UpstreamServer, echo_handler, free_port
from .messages import Response
from .plugin import Plugin
from .plugins import PluginRegistry
from .upstream import Fetched, HTTPClient

__all__ = [
    "UpstreamServer", "ResetConnection", "RunningGateway", "GatewayClient", "start_gateway", "raw_request",
    "echo_handler", "free_port", "plugin_config", "GatewayProcess",
]

class GatewayClient:
    """A keep-alive HTTP client bound to one gateway (the core's own client)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = HTTPClient(read_timeout=30.0)

    async def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: bytes | str | None = None, json_body: Any = None, timeout: float = 30.0, limit: int = 1 << 26,
    ) -> Fetched:
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs = list(headers.items() if isinstance(headers, Mapping) else headers or [])
            hdrs.append(("content-type", "application/json"))
            headers = hdrs
        if isinstance(body, str):
            body = body.encode()
        return await self.http.fetch(method, self.base_url + path, headers=headers, body=body, timeout=timeout,
                                     limit=limit)

    async def stream(self, method: str, path: str, **kwargs: Any) -> Response:
        """Like :meth:`request` but the response body streams (``await resp.body.aclose()`` after)."""
        return await self.http.request(method, self.base_url + path, **kwargs)

    async def get(self, path: str, **kw: Any) -> Fetched:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> Fetched:
        return await self.request("POST", path, **kw)

    async def aclose(self) -> None:
        await self.http.aclose()


async def raw_request(port: int, data: bytes, *, host: str = "127.0.0.1", timeout: float = 5.0,
                      read_until_close: bool = True) -> bytes:
    """Send raw bytes and return everything the server answers (until it closes or ``timeout``)."""
    stream = await trio.open_tcp_stream(host, port)
    out = bytearray()
    try:
        await stream.send_all(data)
        with trio.move_on_after(timeout):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    break
                out += chunk
                if not read_until_close and b"\r\n\r\n" in out:
                    break
    except (trio.BrokenResourceError, OSError):
        pass
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(out)


class RunningGateway:
    """A gateway serving on loopback inside a test's nursery."""

    def __init__(self, gateway: Gateway, bound: list[tuple[str, int]], stop: trio.Event, done: trio.Event) -> None:
        self.gateway = gateway
        self.bound = bound
        self._stop = stop
        self._done = done
        self.client = GatewayClient(self.url)

    @property
    def port(self) -> int:
        return self.bound[0][1]

    @property
    def url(self) -> str:
        host, port = self.bound[0]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def reload(self, config: Mapping[str, Any] | str) -> list[str]:
        """Reload like SIGHUP does; returns the errors (empty on success), the old config keeps serving."""
        from .config import ConfigError

        try:
            cfg = _to_config(config, self.gateway.config.gateway.listen)
        except ConfigError as exc:
            return [f"{exc.source}: {e}" for e in exc.errors]
        return await self.gateway.reload(cfg)

    async def stop(self) -> None:
        self._stop.set()
        await self._done.wait()
        await self.client.aclose()


def _to_config(config: Mapping[str, Any] | str | Config, listen: Any = None) -> Config:
    if isinstance(config, Config):
        return config
    raw = tomllib.loads(config) if isinstance(config, str) else json.loads(json.dumps(config))
    gw = raw.setdefault("gateway", {})
    if listen is not None:
        gw["listen"] = [{"address": lst.address, "protocol": lst.protocol, "tls_cert": lst.tls_cert,
                         "tls_key": lst.tls_key} for lst in listen]
        for lst in gw["listen"]:
            for k in ("tls_cert", "tls_key"):
                if lst[k] is None:
                    del lst[k]
    else:
        gw.setdefault("listen", ["127.0.0.1:0"])
    gw.setdefault("access_log", "off")
    return parse_config(raw, "<test>")


async def start_gateway(
    nursery: trio.Nursery,
    config: Mapping[str, Any] | str | Config,
    *,
    plugins: Mapping[str, type[Plugin]] | None = None,
    hooks: Sequence[ModuleType] = (),
    autoload: bool = False,
    registry: PluginRegistry | None = None,
) -> RunningGateway:
    """Start a gateway from a config dict / TOML string; returns once it listens.

    ``listen`` defaults to a free loopback port; ``plugins`` registers plugin classes by
    name; ``autoload=True`` also loads installed entry-point plugins.
    """
    reg = registry if registry is not None else PluginRegistry(autoload=autoload)
    for name, cls in (plugins or {}).items():
        reg.register(name, cls)
    reg.hook_modules.extend(hooks)
    cfg = _to_config(config)
    gateway = Gateway(cfg, registry=reg)
    stop = trio.Event()
    done = trio.Event()

    async def run(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await serve(gateway, shutdown_trigger=stop.wait, task_status=task_status)
        finally:
            done.set()

    bound = await nursery.start(run)
    return RunningGateway(gateway, bound, stop, done)


def plugin_config(plugin: type[Plugin], raw: Mapping[str, Any], *, path: str = "plugin") -> Any:
    """Structure ``raw`` into ``plugin.Config`` exactly as the core does at config load.

    For schema tests without a gateway: returns the frozen config, or raises
    :class:`~triogate.ConfigError` whose ``errors`` carry key paths under ``path``.
    """
    return structure(dict(raw), plugin.Config, path)


# --------------------------------------------------------------------------- pytest fixtures


@pytest.fixture
async def upstream_factory(nursery: trio.Nursery) -> Callable[..., Awaitable[UpstreamServer]]:
    async def factory(handler: Handler | None = None, **kwargs: Any) -> UpstreamServer:
        server = UpstreamServer(handler, **kwargs)
        await nursery.start(server.run)
        return server

    return factory


@pytest.fixture
async def upstream(upstream_factory: Callable[..., Awaitable[UpstreamServer]]) -> UpstreamServer:
    return await upstream_factory()


@pytest.fixture
async def gateway_factory(nursery: trio.Nursery) -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    started: list[RunningGateway] = []

    async def factory(config: Mapping[str, Any] | str, **kwargs: Any) -> RunningGateway:
        gw = await start_gateway(nursery, config, **kwargs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await gw.stop()


@pytest.fixture
def plugin_registry() -> PluginRegistry:
    return PluginRegistry(autoload=False)


# =========================================================================== identity provider
# Test identity provider for the auth plugins (jwt, oauth2-introspection): a real HTTP
# server on loopback serving a JWKS, an OIDC discovery document and an RFC 7662
# introspection endpoint. Appended as its own block; PyJWT[crypto] is imported lazily,
# so the core does not depend on it (the auth plugins' tests do).

from .messages import Request  # noqa: E402

__all__ += ["IdentityProvider", "IdPKey"]


_KEY_POOL: dict[tuple[str, int], Any] = {}


def _private_key(family: str, index: int) -> Any:
    """Generated private keys, cached per process (RSA generation is slow)."""
    key = _KEY_POOL.get((family, index))
    if key is None:
        import os as _os

        from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

        if family == "RSA":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif family in ("P-256", "P-384", "P-521", "secp256k1"):
            curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1,
                     "secp256k1": ec.SECP256K1}[family]
            key = ec.generate_private_key(curve())
        elif family == "Ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        elif family == "Ed448":
            key = ed448.Ed448PrivateKey.generate()
        elif family == "oct":
            key = _os.urandom(64)
        else:
            raise ValueError(f"unknown key family {family!r}")
        _KEY_POOL[(family, index)] = key
    return key


def _family_for(alg: str, curve: str | None = None) -> str:
    if alg.startswith("HS"):
        return "oct"
    if alg.startswith(("RS", "PS")):
        return "RSA"
    if alg == "ES256K":
        return "secp256k1"
    if alg.startswith("ES"):
        return {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    if alg == "EdDSA":
        return curve or "Ed25519"
    raise ValueError(f"unsupported algorithm {alg!r}")


class IdPKey:
    """One signing key of an :class:`IdentityProvider`: ``kid``, ``alg``, the private key and its public JWK."""

    def __init__(self, kid: str, alg: str, private: Any) -> None:
        self.kid = kid
        self.alg = alg
        self.private = private

    @property
    def public(self) -> Any:
        return self.private if isinstance(self.private, bytes) else self.private.public_key()

    @property
    def secret(self) -> bytes:
        """The HMAC secret (HS* keys only)."""
        if not isinstance(self.private, bytes):
            raise TypeError(f"{self.kid} is not an HMAC key")
        return self.private

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwk(self) -> dict[str, Any]:
        from jwt import algorithms as jwa

        if isinstance(self.private, bytes):
            data = jwa.HMACAlgorithm.to_jwk(self.private, as_dict=True)
        elif self.alg.startswith(("RS", "PS")):
            data = jwa.RSAAlgorithm.to_jwk(self.public, as_dict=True)
        elif self.alg.startswith("ES"):
            data = jwa.ECAlgorithm.to_jwk(self.public, as_dict=True)
        else:
            data = jwa.OKPAlgorithm.to_jwk(self.public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}


class IdentityProvider:
    """A real identity provider on loopback for auth-plugin tests (fixture ``identity_provider``).

    It serves, over HTTP on 127.0.0.1 (built on :class:`UpstreamServer`):

    - ``GET /.well-known/openid-configuration``: OIDC discovery (``issuer``, ``jwks_uri``,
      ``introspection_endpoint``); ``issuer`` is ``idp.issuer`` (the server's URL).
    - ``GET /jwks``: the JWK Set of the *published* keys (``idp.jwks_uri``).
    - ``POST /introspect``: RFC 7662 introspection (``idp.introspection_url``) of opaque tokens
      made with :meth:`issue_opaque`; clients authenticate with ``client_secret_basic`` or
      ``client_secret_post`` as ``idp.client_id`` / ``idp.client_secret``; a wrong client gets 401.

    Keys (PyJWT[crypto] and cryptography must be installed, they are imported lazily):

    - ``kid = idp.add_key("RS256")`` for any of HS256/384/512, RS256/384/512, PS256/384/512,
      ES256/384/512, ES256K, EdDSA (``curve="Ed448"`` for Ed448). HMAC keys are not published
      unless ``publish=True``; ``idp.keys[kid]`` is an :class:`IdPKey` (``.secret``, ``.public_pem()``).
    - ``idp.mint(kid=None, **claims)``: a signed JWT with defaults ``iss=idp.issuer``, ``sub="user-1"``,
      ``iat=now``, ``exp=now+300`` (pass ``exp=None`` to omit a claim); ``headers=`` adds JOSE header
      fields, ``include_kid=False`` omits ``kid``; ``alg=`` overrides the header algorithm.
    - ``idp.rotate(alg)``: publish a new key and unpublish every older one; returns the new kid.
    - ``idp.unpublish(kid)`` / ``idp.publish(kid)``.

    Faults and counters:

    - ``idp.outage = "error"`` (503 answers), ``"hang"`` (never answers), ``"reset"`` (connection reset)
      or ``None`` (healthy) — applies to every endpoint; ``idp.delay`` seconds are slept before answering.
    - ``idp.calls`` counts requests per endpoint: ``"jwks"``, ``"discovery"``, ``"introspect"``;
      ``idp.introspections`` records each introspection form (dict) with the ``auth`` method used.
    """

    def __init__(self, *, client_id: str = "gateway", client_secret: str = "gateway-secret") -> None:
        import collections

        self.server = UpstreamServer(self._handle, name="idp")
        self.keys: dict[str, IdPKey] = {}
        self.published: list[str] = []
        self.client_id = client_id
        self.client_secret = client_secret
        self.calls: collections.Counter[str] = collections.Counter()
        self.introspections: list[dict[str, str]] = []
        self.opaque: dict[str, dict[str, Any]] = {}
        self.outage: str | None = None
        self.delay = 0.0
        self._counter = 0
        self._pool_index: dict[str, int] = {}

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def issuer(self) -> str:
        return self.server.url

    @property
    def jwks_uri(self) -> str:
        return self.server.url + "/jwks"

    @property
    def discovery_url(self) -> str:
        return self.server.url + "/.well-known/openid-configuration"

    @property
    def introspection_url(self) -> str:
        return self.server.url + "/introspect"

    async def start(self, nursery: trio.Nursery) -> IdentityProvider:
        await nursery.start(self.server.run)
        return self

    # ------------------------------------------------------------------ keys and tokens

    def add_key(self, alg: str = "RS256", *, kid: str | None = None, publish: bool | None = None,
                curve: str | None = None) -> str:
        family = _family_for(alg, curve)
        index = self._pool_index.get(family, 0)
        self._pool_index[family] = index + 1
        private = _private_key(family, index)
        self._counter += 1
        kid = kid or f"{alg.lower()}-{self._counter}"
        self.keys[kid] = IdPKey(kid, alg, private)
        if publish if publish is not None else not alg.startswith("HS"):
            self.published.append(kid)
        return kid

    def publish(self, kid: str) -> None:
        if kid not in self.published:
            self.published.append(kid)

    def unpublish(self, kid: str) -> None:
        if kid in self.published:
            self.published.remove(kid)

    def rotate(self, alg: str = "RS256") -> str:
        """Publish a new key and stop publishing every older one; returns the new kid."""
        kid = self.add_key(alg, publish=False)
        self.published[:] = [kid]
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.keys[k].jwk() for k in self.published]}

    def mint(self, kid: str | None = None, *, alg: str | None = None, headers: dict[str, Any] | None = None,
             include_kid: bool = True, key: Any = None, **claims: Any) -> str:
        """A signed JWT; ``kid`` defaults to the newest key (one is added if there is none)."""
        import time as _time

        import jwt

        if kid is None:
            kid = self.published[-1] if self.published else (next(reversed(self.keys)) if self.keys else self.add_key())
        k = self.keys[kid]
        now = int(_time.time())
        payload: dict[str, Any] = {"iss": self.issuer, "sub": "user-1", "iat": now, "exp": now + 300}
        payload.update(claims)
        payload = {n: v for n, v in payload.items() if v is not None}
        hdrs = dict(headers or {})
        if include_kid:
            hdrs.setdefault("kid", kid)
        return jwt.encode(payload, key if key is not None else k.private, algorithm=alg or k.alg, headers=hdrs)

    def issue_opaque(self, *, active: bool = True, **fields: Any) -> str:
        """An opaque token the introspection endpoint knows; ``fields`` become its introspection response."""
        import secrets
        import time as _time

        token = secrets.token_urlsafe(24)
        now = int(_time.time())
        data: dict[str, Any] = {"active": active}
        if active:
            data.update({"sub": "user-1", "client_id": "app-1", "scope": "read", "exp": now + 300, "iat": now,
                         "token_type": "Bearer"})
        data.update(fields)
        self.opaque[token] = {n: v for n, v in data.items() if v is not None}
        return token

    def revoke(self, token: str) -> None:
        self.opaque[token] = {"active": False}

    # ------------------------------------------------------------------ serving

    async def _handle(self, req: Request) -> Response:
        import base64
        from urllib.parse import parse_qsl

        name = {"/jwks": "jwks", "/.well-known/openid-configuration": "discovery",
                "/introspect": "introspect"}.get(req.path, "other")
        self.calls[name] += 1
        if self.delay:
            await trio.sleep(self.delay)
        if self.outage == "hang":
            await trio.sleep_forever()
        if self.outage == "reset":
            raise ResetConnection()
        if self.outage == "error":
            return Response.json({"error": "temporarily_unavailable"}, status=503)
        if name == "jwks" and req.method == "GET":
            return Response.json(self.jwks(), headers=[("cache-control", "max-age=60")])
        if name == "discovery" and req.method == "GET":
            return Response.json({"issuer": self.issuer, "jwks_uri": self.jwks_uri,
                                  "introspection_endpoint": self.introspection_url,
                                  "id_token_signing_alg_values_supported": ["RS256"]})
        if name == "introspect" and req.method == "POST":
            form = dict(parse_qsl((await req.body.read(1 << 16)).decode(), keep_blank_values=True))
            auth = req.headers.get("authorization") or ""
            method, cid, secret = "none", None, None
            if auth.lower().startswith("basic "):
                from urllib.parse import unquote

                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                method, cid, secret = "client_secret_basic", unquote(user), unquote(pw)
            elif "client_id" in form:
                method, cid, secret = "client_secret_post", form.get("client_id"), form.get("client_secret")
            self.introspections.append({**form, "auth": method})
            if cid != self.client_id or secret != self.client_secret:
                return Response.json({"error": "invalid_client"}, status=401,
                                     headers=[("www-authenticate", 'Basic realm="idp"')])
            data = self.opaque.get(form.get("token", ""), {"active": False})
            return Response.json(data)
        return Response.json({"error": "not_found"}, status=404)


@pytest.fixture
async def identity_provider(nursery: trio.Nursery) -> IdentityProvider:
    """A started :class:`IdentityProvider` (JWKS, OIDC discovery, RFC 7662 introspection) on loopback."""
    return await IdentityProvider().start(nursery)


# =========================================================================== redis_server fixture
# A real ``redis-server`` (Debian/Ubuntu: ``apt-get install redis-server``) for plugins with a Redis
# backend. Kept self-contained (local imports) so it can be read and moved as one block.


class RedisServer:
    """A real ``redis-server`` on a free loopback port without persistence.

    ``await stop()`` (SIGTERM) / ``await kill()`` (SIGKILL) then ``await start()`` simulate an
    outage; the port stays the same so clients reconnect to the same URL.
    """

    def __init__(self, port: int | None = None, *, binary: str = "redis-server", args: Sequence[str] = ()) -> None:
        import shutil
        import tempfile

        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(f"{binary} not found on PATH (install it: apt-get install redis-server)")
        self.binary = found
        self.port = port or free_port()
        self.args = list(args)
        self.process: trio.Process | None = None
        self.directory = tempfile.mkdtemp(prefix="triogate-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, timeout: float = 10.0) -> None:
        """Start the server; returns once it answers PING."""
        import subprocess

        if self.running:
            return
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no", "--dir", self.directory, "--loglevel", "warning",
                *self.args]
        self.process = await trio.lowlevel.open_process(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with trio.move_on_after(timeout):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port})")
                try:
                    if await self.command("PING", timeout=1.0) == b"+PONG":
                        return
                except OSError:
                    pass
                await trio.sleep(0.02)
        await self.kill()
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING within {timeout}s")

    async def stop(self) -> None:
        """Terminate (SIGTERM) and wait; the port is free afterwards."""
        await self._end(kill=False)

    async def kill(self) -> None:
        """Kill (SIGKILL) and wait, like a crash."""
        await self._end(kill=True)

    async def _end(self, kill: bool) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.returncode is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        with trio.move_on_after(10.0):
            await proc.wait()
            return
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def command(self, *args: str | bytes, timeout: float = 5.0) -> bytes:
        """Send one command; return the first reply line (e.g. ``b"+OK"``, ``b":3"``, ``b"$5"``)."""
        parts = [a.encode() if isinstance(a, str) else a for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
            try:
                await stream.send_all(payload)
                buf = b""
                while b"\r\n" not in buf:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise OSError("redis-server closed the connection")
                    buf += chunk
                return buf.split(b"\r\n", 1)[0]
            finally:
                await trio.aclose_forcefully(stream)

    async def aclose(self) -> None:
        import shutil

        await self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    """A started :class:`RedisServer` (``.url``); stopped and removed after the test."""
    server = RedisServer()
    try:
        await server.start()
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await server.aclose()


# =========================================================================== GatewayProcess
# ``triogate run`` in a child process, for what only a real process shows: signals, pid files,
# workers, installed entry points, several gateways sharing state. Kept self-contained like
# RedisServer above.


class GatewayProcess:
    """``triogate run -c <config>`` in a child process, started and stopped with bounded waits.

    ``async with GatewayProcess(config) as gw:`` returns once the gateway serves and stops it
    on exit (SIGTERM, so it drains; SIGKILL after ``stop_timeout``). "Serves" means the pid file
    holds the child's pid: ``triogate run`` writes it only after every listener (with
    ``workers``, every worker) is up, so no port polling is needed and no request can race the
    startup. If the child exits first or does not serve within ``start_timeout``, ``start``
    raises ``RuntimeError`` with its exit status and the end of its output.

    - ``config``: a path to a TOML file; TOML text (``str``) or a dict are written to a temporary
      directory first (relative ``hooks`` paths then resolve there: pass a path for those).
    - ``env``: the child's environment (default: this process's), plus ``PYTHONUNBUFFERED=1``
      so :meth:`output` is current.
    - ``python``: the interpreter that runs ``-m triogate`` (default: this one); ``command``
      replaces ``[python, "-m", "triogate"]`` altogether (e.g. an installed ``triogate`` script).
    - ``args``: more ``triogate run`` arguments (``--workers 2``, ``--pid-file p``).
    - ``cwd``: the child's working directory (default: the config file's directory).

    ``pid``, ``returncode``, ``addresses``/``port``/``url`` (from ``[gateway] listen``),
    ``admin_port``/``admin_url`` (from ``[admin] listen``), ``pid_file``, :meth:`output`
    (stdout and stderr together, also after exit), :meth:`send_signal`, :meth:`wait`,
    :meth:`stop`, :meth:`kill`. Without ``async with``: ``await start()`` then ``await aclose()``.
    """

    def __init__(
        self,
        config: os.PathLike[str] | str | Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        python: str | os.PathLike[str] | None = None,
        command: Sequence[str | os.PathLike[str]] | None = None,
        args: Sequence[str | os.PathLike[str]] = (),
        cwd: str | os.PathLike[str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        import sys
        import tempfile
        from pathlib import Path

        from .cli import default_pid_file

        self.directory = Path(tempfile.mkdtemp(prefix="triogate-run-"))
        if isinstance(config, os.PathLike):
            self.config_path = Path(config).resolve()
            try:
                raw = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
                raw = {}  # the child reports it
        else:
            import tomli_w

            text = config if isinstance(config, str) else tomli_w.dumps(dict(config))
            self.config_path = self.directory / "gateway.toml"
            self.config_path.write_text(text, encoding="utf-8")
            try:
                raw = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                raw = {}
        self.addresses, self.admin_address = _listen_addresses(raw)
        prefix = [str(c) for c in command] if command is not None else [str(python or sys.executable), "-m", "triogate"]
        self.args = [str(a) for a in args]
        self.argv = [*prefix, "run", "-c", str(self.config_path), *self.args]
        self.cwd = str(cwd) if cwd is not None else str(self.config_path.parent)
        if "--pid-file" in self.args[:-1]:
            self.pid_file = Path(self.cwd, self.args[self.args.index("--pid-file") + 1])
        else:
            self.pid_file = default_pid_file(str(self.config_path))
        self.env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.log_path = self.directory / "output.log"
        self.process: trio.Process | None = None
        self._output: str | None = None

    # ------------------------------------------------------------------ what tests read

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """None while running (polled), else the exit status (negative: killed by that signal)."""
        return self.process.returncode if self.process is not None else None

    @property
    def port(self) -> int:
        """The first ``[gateway] listen`` port."""
        if not self.addresses:
            raise RuntimeError(f"no host:port in [gateway] listen of {self.config_path}")
        return self.addresses[0][1]

    @property
    def url(self) -> str:
        host, port = self.addresses[0] if self.addresses else ("127.0.0.1", self.port)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def admin_port(self) -> int:
        if self.admin_address is None:
            raise RuntimeError(f"no [admin] listen in {self.config_path}")
        return self.admin_address[1]

    @property
    def admin_url(self) -> str:
        host, port = self.admin_address or ("127.0.0.1", self.admin_port)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def output(self) -> str:
        """Everything the child wrote to stdout and stderr so far (kept after :meth:`aclose`)."""
        if self._output is not None:
            return self._output
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the child; returns once it serves (its pid is in the pid file)."""
        import subprocess

        if self.process is not None:
            raise RuntimeError("the gateway process was already started")
        with self.log_path.open("wb") as log:
            self.process = await trio.lowlevel.open_process(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        expected = str(self.process.pid)
        with trio.move_on_after(self.start_timeout):
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(self._failure(f"exited with status {self.process.returncode} before serving"))
                try:
                    if self.pid_file.read_text().strip() == expected:
                        return
                except OSError:
                    pass
                await trio.sleep(0.05)
        await self.kill()
        raise RuntimeError(self._failure(f"did not serve within {self.start_timeout} s (no pid in {self.pid_file})"))

    def _failure(self, what: str) -> str:
        return f"{' '.join(self.argv)} {what}; its output:\n{self.output()[-4000:]}"

    def send_signal(self, sig: int) -> None:
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        self.process.send_signal(sig)

    async def wait(self, timeout: float | None = None) -> int:
        """The exit status, waiting at most ``timeout`` (default ``stop_timeout``) seconds.

        Raises ``trio.TooSlowError`` when the child is still running after that.
        """
        if self.process is None:
            raise RuntimeError("the gateway process has not been started")
        with trio.fail_after(self.stop_timeout if timeout is None else timeout):
            return await self.process.wait()

    async def stop(self, timeout: float | None = None) -> int:
        """SIGTERM (the gateway drains in-flight requests), SIGKILL after ``timeout``; the exit status."""
        import signal

        proc = self.process
        if proc is None:
            raise RuntimeError("the gateway process has not been started")
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(self.stop_timeout if timeout is None else timeout):
                return await proc.wait()
            proc.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(10.0):
            await proc.wait()
        return proc.returncode  # type: ignore[return-value]

    async def kill(self) -> None:
        """SIGKILL, like a crash, and wait for it."""
        proc = self.process
        if proc is not None and proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True), trio.move_on_after(10.0):
                await proc.wait()

    async def aclose(self) -> None:
        """Stop the child if it runs, keep its output, remove the temporary directory."""
        import shutil

        with trio.CancelScope(shield=True):
            if self.process is not None:
                await self.stop()
            if self._output is None:
                self._output = self.output()
            shutil.rmtree(self.directory, ignore_errors=True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _listen_addresses(raw: Mapping[str, Any]) -> tuple[list[tuple[str, int]], tuple[str, int] | None]:
    """``[gateway] listen`` (default 127.0.0.1:8000) and ``[admin] listen`` as (host, port) pairs."""

    def split(address: Any) -> tuple[str, int] | None:
        if isinstance(address, Mapping):
            address = address.get("address")
        if not isinstance(address, str):
            return None
        host, _, port = address.rpartition(":")
        return (host.strip("[]"), int(port)) if port.isdigit() and host else None

    gateway = raw.get("gateway") if isinstance(raw.get("gateway"), Mapping) else {}
    listen = gateway.get("listen", ["127.0.0.1:8000"])
    addresses = [a for a in (split(x) for x in (listen if isinstance(listen, list) else [])) if a is not None]
    admin = raw.get("admin") if isinstance(raw.get("admin"), Mapping) else {}
    return addresses, split(admin.get("listen"))

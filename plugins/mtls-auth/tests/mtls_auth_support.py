"""Shared setup: a real CA, a TLS listener asking for client certificates, mtls-auth on /api."""

from __future__ import annotations

import json
from typing import Any

import pytest
from triogate.testing import RunningGateway, UpstreamServer
from triogate.testing.pki import Issued, TestPKI, tls_request
from triogate_acl import AclPlugin
from triogate_key_auth import KeyAuthPlugin
from triogate_mtls_auth import MtlsAuthPlugin

PLUGINS = {"mtls-auth": MtlsAuthPlugin, "acl": AclPlugin, "key-auth": KeyAuthPlugin}


class Certs:
    """The test PKI: alice (mapped by subject), bob (by fingerprint), svc (by URI SAN), stranger (unmapped)."""

    def __init__(self, pki: TestPKI) -> None:
        self.pki = pki
        self.server = pki.server()
        self.alice = pki.client("alice", organization="Example")
        self.bob = pki.client("bob")
        self.svc = pki.client("orders-service", uris=["spiffe://example.org/orders"], dns=["orders.internal"])
        self.stranger = pki.client("stranger")


@pytest.fixture
def certs(tmp_path) -> Certs:
    return Certs(TestPKI(tmp_path / "pki"))


def consumers(certs: Certs) -> dict[str, Any]:
    return {
        "alice": {"groups": ["staff"], "custom_id": "u-1",
                  "credentials": {"mtls-auth": {"subjects": ["cn=alice, o=Example"]}}},
        "bob": {"groups": ["partners"], "credentials": {"mtls-auth": {"fingerprints": [certs.bob.fingerprint.upper()]}}},
        "orders": {"groups": ["services"],
                   "credentials": {"mtls-auth": {"uris": ["spiffe://example.org/orders"]},
                                   "key-auth": {"keys": ["orders-key"]}}},
        "guest": {"groups": ["public"]},
    }


def config(certs: Certs, upstream: UpstreamServer, *, client_auth: str = "optional", crl: str | None = None,
           plugins: dict[str, Any] | None = None) -> dict[str, Any]:
    listener = {"address": "127.0.0.1:0", "tls_cert": certs.server.cert_file, "tls_key": certs.server.key_file,
                "client_auth": client_auth, "client_ca": certs.pki.ca_file}
    if crl:
        listener["client_crl"] = crl
    return {
        "gateway": {"listen": [listener]},
        "upstreams": {"echo": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api",
                           "plugins": {"mtls-auth": {}} if plugins is None else plugins}},
        "consumers": consumers(certs),
    }


@pytest.fixture
def start(gateway_factory, upstream: UpstreamServer, certs: Certs):
    async def start(*, client_auth: str = "optional", crl: str | None = None, **plugins: Any) -> RunningGateway:
        cfg = config(certs, upstream, client_auth=client_auth, crl=crl,
                     plugins={k.replace("_", "-"): v for k, v in plugins.items()} or None)
        return await gateway_factory(cfg, plugins=PLUGINS)

    return start


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())

    def json(self) -> Any:
        return json.loads(self.body)


async def call(gw: RunningGateway, certs: Certs, cert: Issued | None, path: str = "/api/x",
               headers: list[tuple[str, str]] = ()) -> Answer:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
    data = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}connection: close\r\n\r\n".encode()
    return Answer(await tls_request(gw.port, data, certs.pki.client_context(cert)))

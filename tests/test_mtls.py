"""Mutual TLS on the listeners: client_auth = optional/required, client CA and CRL, ctx.client_cert."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import triogate
from triogate.testing import load_gateway
from triogate.testing.pki import TestPKI, tls_request

GET = b"GET /x HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"


class CertEcho(triogate.Plugin):
    """Answers with what ctx.client_cert says (None: no certificate)."""

    priority = 1000

    @triogate.hookimpl
    async def pre_route(self, ctx: triogate.Context) -> triogate.Response:
        cc = ctx.client_cert
        body = None if cc is None else {
            "subject": cc.subject, "issuer": cc.issuer, "serial": cc.serial, "fingerprint": cc.fingerprint,
            "not_after": cc.not_after.isoformat(), "dns": list(cc.dns_names), "uris": list(cc.uris),
            "emails": list(cc.emails), "pem": cc.pem,
        }
        return triogate.Response(200, [(b"content-type", b"application/json")], json.dumps(body).encode())


@pytest.fixture
def pki(tmp_path):
    return TestPKI(tmp_path / "pki")


def config(pki: TestPKI, mode: str, *, crl: str | None = None, protocol: str = "http1", **extra) -> dict:
    server = pki.server()
    listener = {"address": "127.0.0.1:0", "protocol": protocol, "tls_cert": server.cert_file,
                "tls_key": server.key_file, "client_auth": mode, "client_ca": pki.ca_file, **extra}
    if crl:
        listener["client_crl"] = crl
    return {"gateway": {"listen": [listener]}, "plugins": {"echo": {}}}


def body_of(raw: bytes) -> object:
    assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


async def test_optional_without_a_certificate_reaches_plugins_with_none(pki, gateway_factory):
    gw = await gateway_factory(config(pki, "optional"), plugins={"echo": CertEcho})
    assert body_of(await tls_request(gw.port, GET, pki.client_context())) is None


async def test_optional_with_a_certificate_describes_it(pki, gateway_factory):
    gw = await gateway_factory(config(pki, "optional"), plugins={"echo": CertEcho})
    alice = pki.client("alice", organization="Example", dns=["alice.example"], uris=["spiffe://example/alice"],
                       emails=["alice@example.com"])
    got = body_of(await tls_request(gw.port, GET, pki.client_context(alice)))
    assert got["subject"] == "CN=alice,O=Example" == alice.subject
    assert got["issuer"] == "CN=triogate test CA"
    assert got["serial"] == alice.serial
    assert got["fingerprint"] == alice.fingerprint
    assert got["dns"] == ["alice.example"]
    assert got["uris"] == ["spiffe://example/alice"]
    assert got["emails"] == ["alice@example.com"]
    assert ssl.PEM_cert_to_DER_cert(got["pem"]) == alice.der


async def test_keep_alive_requests_all_carry_the_certificate(pki, gateway_factory):
    gw = await gateway_factory(config(pki, "optional"), plugins={"echo": CertEcho})
    bob = pki.client("bob")
    two = b"GET /a HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n" + GET
    raw = await tls_request(gw.port, two, pki.client_context(bob))
    assert raw.count(bob.fingerprint.encode()) == 2


@pytest.mark.parametrize("mode", ["optional", "required"])
async def test_an_invalid_certificate_fails_the_handshake(pki, tmp_path, gateway_factory, mode):
    gw = await gateway_factory(config(pki, mode), plugins={"echo": CertEcho})
    other = TestPKI(tmp_path / "other", name="other CA")
    for bad in (pki.client("old", expired=True), other.client("mallory")):
        ctx = pki.client_context()
        ctx.load_cert_chain(bad.cert_file, bad.key_file)
        with pytest.raises(ssl.SSLError):
            await tls_request(gw.port, GET, ctx)


async def test_a_server_only_certificate_is_not_a_client_certificate(pki, gateway_factory):
    from cryptography.x509.oid import ExtendedKeyUsageOID

    gw = await gateway_factory(config(pki, "required"), plugins={"echo": CertEcho})
    wrong = pki.client("svc", purpose=ExtendedKeyUsageOID.SERVER_AUTH)
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context(wrong))


async def test_required_refuses_a_handshake_without_a_certificate(pki, gateway_factory):
    gw = await gateway_factory(config(pki, "required"), plugins={"echo": CertEcho})
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context())
    carol = pki.client("carol")
    assert body_of(await tls_request(gw.port, GET, pki.client_context(carol)))["subject"] == "CN=carol"


async def test_a_revoked_certificate_fails_the_handshake(pki, gateway_factory):
    dave, erin = pki.client("dave"), pki.client("erin")
    gw = await gateway_factory(config(pki, "optional", crl=pki.crl([dave])), plugins={"echo": CertEcho})
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context(dave))
    assert body_of(await tls_request(gw.port, GET, pki.client_context(erin)))["subject"] == "CN=erin"


async def test_a_reload_rereads_the_crl_for_new_connections(pki, gateway_factory):
    frank = pki.client("frank")
    cfg = config(pki, "optional", crl=pki.crl([], name="crl"))
    gw = await gateway_factory(cfg, plugins={"echo": CertEcho})
    assert body_of(await tls_request(gw.port, GET, pki.client_context(frank)))["subject"] == "CN=frank"
    pki.crl([frank], name="crl")  # the same file, now revoking frank
    cfg["gateway"]["request_id_header"] = "x-req-id"  # a changed config: the reload builds a new generation
    assert await gw.reload(cfg) == []
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context(frank))


async def test_a_reload_rereads_the_client_ca(pki, tmp_path, gateway_factory):
    """client_ca is read again on reload: the CA bundle's new contents decide for new connections."""
    import shutil

    other = TestPKI(tmp_path / "other", name="partner CA")
    bundle = tmp_path / "clients.pem"
    shutil.copy(pki.ca_file, bundle)
    cfg = config(pki, "optional", client_ca=str(bundle))
    gw = await gateway_factory(cfg, plugins={"echo": CertEcho})
    ours, partner = pki.client("ours"), other.client("partner")
    assert body_of(await tls_request(gw.port, GET, pki.client_context(ours)))["subject"] == "CN=ours"
    ctx = pki.client_context()
    ctx.load_cert_chain(partner.cert_file, partner.key_file)
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, ctx)
    bundle.write_bytes(Path(other.ca_file).read_bytes())  # now only the partner CA
    cfg["gateway"]["request_id_header"] = "x-req-id"
    assert await gw.reload(cfg) == []
    assert body_of(await tls_request(gw.port, GET, ctx))["subject"] == "CN=partner"
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context(ours))


@pytest.mark.parametrize("protocol", ["http1", "h2"])
async def test_a_reload_closes_keep_alive_connections_verified_under_the_old_files(pki, gateway_factory, protocol):
    """A certificate is verified in the handshake: a connection opened before a reload that revokes it
    must not go on being served. It ends after its current request; the next one needs a new handshake."""
    import trio

    frank = pki.client("frank")
    mode = "optional" if protocol == "http1" else "required"  # h2 listeners offer only "required"
    cfg = config(pki, mode, crl=pki.crl([], name="crl"), protocol=protocol)
    gw = await gateway_factory(cfg, plugins={"echo": CertEcho})
    keep = b"GET /a HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", gw.port),
                            pki.client_context(frank, alpn=["http/1.1"]), server_hostname="127.0.0.1")
    async with stream:
        with trio.fail_after(10):
            await stream.send_all(keep)
            first = b""
            while b'"CN=frank"' not in first:
                first += await stream.receive_some(65536)
            pki.crl([frank], name="crl")  # now revoking frank
            cfg["gateway"]["request_id_header"] = "x-req-id"
            assert await gw.reload(cfg) == []
            await stream.send_all(keep)  # on the connection verified before the reload
            rest = b""
            try:
                while chunk := await stream.receive_some(65536):
                    rest += chunk
            except trio.BrokenResourceError:
                pass
    assert b"CN=frank" not in rest, rest[:200]  # closed, never served again
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context(frank))


async def test_h2_listener_required_verifies_the_handshake(pki, gateway_factory):
    gw = await gateway_factory(config(pki, "required", protocol="h2"), plugins={"echo": CertEcho})
    with pytest.raises(ssl.SSLError):
        await tls_request(gw.port, GET, pki.client_context())
    grace = pki.client("grace")  # HTTP/1.1 on the h2 port goes through the native listener: it sees the cert
    assert body_of(await tls_request(gw.port, GET, pki.client_context(grace)))["subject"] == "CN=grace"


async def test_h2_listener_http2_requests_carry_no_certificate(pki, gateway_factory):
    """The documented limit: hypercorn exposes no peer certificate, so HTTP/2 requests see None."""
    import h2.config
    import h2.connection
    import h2.events
    import trio

    gw = await gateway_factory(config(pki, "required", protocol="h2"), plugins={"echo": CertEcho})
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", gw.port),
                            pki.client_context(pki.client("heidi"), alpn=["h2"]), server_hostname="127.0.0.1")
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":path", "/x"), (":scheme", "https"), (":authority", "127.0.0.1")],
                      end_stream=True)
    status, body, done = None, b"", False
    async with stream:
        with trio.fail_after(5):
            await stream.do_handshake()
            assert stream.selected_alpn_protocol() == "h2"
            await stream.send_all(conn.data_to_send())
            while not done:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        status = dict(ev.headers)[":status"]
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                    elif isinstance(ev, h2.events.StreamEnded):
                        done = True
                if out := conn.data_to_send():
                    await stream.send_all(out)
    assert (status, json.loads(body)) == ("200", None)


def _errors(cfg: dict) -> str:
    with pytest.raises(triogate.ConfigError) as info:
        load_gateway(cfg, plugins={"echo": CertEcho})
    return str(info.value)


def test_config_errors_name_the_listener_key(pki, tmp_path):
    missing = str(tmp_path / "nope.pem")
    assert f"gateway.listen[0].client_ca: no such file: {missing!r}" in _errors(config(pki, "optional", client_ca=missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    assert "gateway.listen[0].client_ca: " in _errors(config(pki, "required", client_ca=str(garbage)))
    assert "holds no PEM certificate" in _errors(config(pki, "required", client_ca=str(garbage)))
    assert "gateway.listen[0].client_crl: " in _errors(config(pki, "optional", crl=str(garbage)))
    assert "holds no PEM CRL" in _errors(config(pki, "optional", crl=str(garbage)))
    assert "gateway.listen[0].client_crl: no such file" in _errors(config(pki, "optional", crl=missing))
    no_ca = config(pki, "required")
    del no_ca["gateway"]["listen"][0]["client_ca"]
    assert "gateway.listen[0].client_ca: client_auth = 'required' needs client_ca" in _errors(no_ca)
    plain = {"gateway": {"listen": [{"address": "127.0.0.1:0", "client_auth": "required", "client_ca": pki.ca_file}]}}
    assert "gateway.listen[0].client_auth: 'required' needs TLS on the listener" in _errors(plain)
    assert "gateway.listen[0].client_auth: \"optional\" is not offered on h2 listeners" in _errors(
        config(pki, "optional", protocol="h2"))
    unused = config(pki, "none")
    assert "gateway.listen[0].client_ca: has no effect with client_auth = \"none\"" in _errors(unused)
    assert "gateway.listen[0].client_auth: " in _errors(config(pki, "sometimes"))

"""TLS: the native listener over trio.SSLStream, and https upstream targets."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import trio

from triogate.testing import raw_request
import pytest

pytestmark = pytest.mark.usefixtures("both_parsers")  # every test: fast (llhttp) and h11 backends


def self_signed(tmp: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def tls_config(upstream_url: str, cert: str, key: str, **gateway: object) -> dict:
    return {
        "gateway": {"listen": [{"address": "127.0.0.1:0", "tls_cert": cert, "tls_key": key}], **gateway},
        "upstreams": {"u": {"targets": [{"url": upstream_url}]}},
        "routes": {"r": {"paths": ["/"], "upstream": "u"}},
    }


async def tls_exchange(port: int, cert: str, data: bytes, alpn: list[str] | None = None) -> tuple[bytes, str | None]:
    ctx = ssl.create_default_context(cafile=cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=ctx)
    out = b""
    async with stream:
        await stream.do_handshake()
        await stream.send_all(data)
        with trio.move_on_after(3):
            try:
                while chunk := await stream.receive_some(65536):
                    out += chunk
            except trio.BrokenResourceError:
                pass
        return out, stream.selected_alpn_protocol()


async def test_tls_listener_serves_and_forwards_https_scheme(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    gw = await gateway_factory(tls_config(upstream.url, cert, key))
    raw, alpn = await tls_exchange(gw.port, cert, b"GET /a HTTP/1.1\r\nhost: localhost\r\n\r\n"
                                   b"GET /b HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n", ["http/1.1"])
    assert raw.count(b"HTTP/1.1 200") == 2  # keep-alive over TLS
    assert alpn == "http/1.1"
    assert [r.headers.get("x-forwarded-proto") for r in upstream.requests] == ["https", "https"]


async def test_plain_http_on_a_tls_listener_is_refused(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    gw = await gateway_factory(tls_config(upstream.url, cert, key))
    raw = await raw_request(gw.port, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", timeout=3)
    assert not raw.startswith(b"HTTP/1.1 200")
    assert upstream.requests == []


async def test_stalled_tls_handshake_is_dropped(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    gw = await gateway_factory(tls_config(upstream.url, cert, key, timeouts={"header": 0.3}))
    stream = await trio.open_tcp_stream("127.0.0.1", gw.port)
    async with stream:
        start = trio.current_time()
        with trio.fail_after(3):
            assert await stream.receive_some(100) == b""  # closed without a handshake
        assert trio.current_time() - start < 2


async def test_https_upstream_target(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    front = await gateway_factory(tls_config(upstream.url, cert, key))
    back = await gateway_factory({
        "upstreams": {"tls": {"targets": [{"url": f"https://127.0.0.1:{front.port}"}], "tls_verify": False}},
        "routes": {"r": {"paths": ["/"], "upstream": "tls"}},
    })
    for i in range(3):
        r = await back.client.get(f"/through/{i}")
        assert r.status == 200
        assert r.json()["path"] == f"/through/{i}"
    assert r.json()["headers"]["x-forwarded-proto"] == ["https"]
    pool = back.gateway.pipeline.upstreams["tls"].targets[0].pool
    assert pool.open_connections == 1  # TLS connections are pooled and reused too


async def test_https_upstream_with_verification_rejects_an_untrusted_cert(tmp_path, upstream, gateway_factory):
    cert, key = self_signed(tmp_path)
    front = await gateway_factory(tls_config(upstream.url, cert, key))
    back = await gateway_factory({
        "upstreams": {"tls": {"targets": [{"url": f"https://127.0.0.1:{front.port}"}], "retries": 0}},
        "routes": {"r": {"paths": ["/"], "upstream": "tls"}},
    })
    r = await back.client.get("/x")
    assert r.status == 502
    assert upstream.requests == []

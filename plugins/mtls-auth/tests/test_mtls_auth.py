"""Mapping verified client certificates to consumers, headers to the upstream, 401/403."""

from __future__ import annotations

import ssl
from urllib.parse import unquote

import pytest
from mtls_auth_support import call


async def test_no_certificate_is_401_with_a_challenge(start, certs, upstream):
    gw = await start()
    r = await call(gw, certs, None)
    assert r.status == 401
    assert r.headers["www-authenticate"] == ['MutualTLS realm="triogate"']
    assert r.headers["content-type"] == ["application/problem+json"]
    assert r.json()["request_id"]
    assert upstream.requests == []


async def test_no_certificate_with_anonymous_is_the_anonymous_consumer(start, certs, upstream):
    gw = await start(mtls_auth={"anonymous": "guest", "pem_header": "x-forwarded-client-cert"})
    spoofed = [("x-client-cert-subject", "CN=admin"), ("x-client-cert-fingerprint", "00" * 32),
               ("x-forwarded-client-cert", "forged")]
    r = await call(gw, certs, None, headers=spoofed)
    assert r.status == 200
    seen = upstream.requests[-1].headers
    assert seen.get("x-consumer-username") == "guest"
    assert seen.get("x-anonymous-consumer") == "true"
    for name, _ in spoofed:  # no certificate: nothing to forward, and the client's copies are dropped
        assert seen.get(name) is None, name


async def test_a_mapped_certificate_reaches_the_upstream_with_its_identity(start, certs, upstream):
    gw = await start()
    spoofed = [("x-client-cert-subject", "CN=admin"), ("x-client-cert-fingerprint", "00" * 32),
               ("x-consumer-username", "admin")]
    for cert, consumer in ((certs.alice, "alice"), (certs.bob, "bob"), (certs.svc, "orders")):
        r = await call(gw, certs, cert, headers=spoofed)
        assert r.status == 200, r.body
        seen = upstream.requests[-1].headers
        assert seen.get_all("x-client-cert-subject") == [cert.subject]
        assert seen.get_all("x-client-cert-fingerprint") == [cert.fingerprint]
        assert seen.get_all("x-consumer-username") == [consumer]
    assert upstream.requests[0].headers.get("x-client-cert-subject") == "CN=alice,O=Example"
    assert upstream.requests[0].headers.get("x-consumer-custom-id") == "u-1"


async def test_an_unmapped_certificate_is_403_even_with_anonymous(start, certs, upstream):
    gw = await start(mtls_auth={"anonymous": "guest"})
    r = await call(gw, certs, certs.stranger)
    assert r.status == 403
    assert r.json()["detail"] == "the client certificate belongs to no consumer"
    assert "www-authenticate" not in r.headers
    assert upstream.requests == []


async def test_the_pem_header_carries_the_url_encoded_certificate(start, certs, upstream):
    gw = await start(mtls_auth={"pem_header": "x-forwarded-client-cert", "subject_header": ""})
    r = await call(gw, certs, certs.alice, headers=[("x-forwarded-client-cert", "forged")])
    assert r.status == 200
    seen = upstream.requests[-1].headers
    (pem,) = seen.get_all("x-forwarded-client-cert")
    assert "\n" not in pem and ssl.PEM_cert_to_DER_cert(unquote(pem)) == certs.alice.der
    assert seen.get("x-client-cert-subject") is None  # turned off


async def test_acl_groups_apply_to_certificate_consumers(start, certs, upstream):
    gw = await start(mtls_auth={}, acl={"allow": ["staff", "services"]})
    assert (await call(gw, certs, certs.alice)).status == 200
    assert (await call(gw, certs, certs.svc)).status == 200
    assert (await call(gw, certs, certs.bob)).status == 403  # partners
    assert len(upstream.requests) == 2


async def test_with_key_auth_either_credential_authenticates(start, certs, upstream):
    gw = await start(mtls_auth={}, key_auth={"key_names": ["x-api-key"]})
    assert (await call(gw, certs, certs.alice)).status == 200
    r = await call(gw, certs, None, headers=[("x-api-key", "orders-key")])
    assert r.status == 200
    assert upstream.requests[-1].headers.get("x-consumer-username") == "orders"
    r = await call(gw, certs, certs.stranger, headers=[("x-api-key", "orders-key")])
    assert r.status == 200  # an OR: the key authenticates although the certificate maps to nobody
    assert upstream.requests[-1].headers.get("x-client-cert-fingerprint") == certs.stranger.fingerprint
    r = await call(gw, certs, None)
    assert r.status == 401
    assert sorted(r.headers["www-authenticate"]) == ['ApiKey realm="triogate"', 'MutualTLS realm="triogate"']


async def test_required_mode_refuses_handshakes_without_a_valid_certificate(start, certs, tmp_path):
    from triogate.testing.pki import TestPKI

    gw = await start(client_auth="required")
    with pytest.raises(ssl.SSLError):
        await call(gw, certs, None)
    with pytest.raises(ssl.SSLError):
        await call(gw, certs, certs.pki.client("old", expired=True))
    other = TestPKI(tmp_path / "other", name="other CA").client("alice", organization="Example")
    with pytest.raises(ssl.SSLError):  # same subject as alice, another CA: never reaches the plugin
        await call(gw, certs, other)
    assert (await call(gw, certs, certs.alice)).status == 200


async def test_a_revoked_certificate_never_reaches_the_plugin(start, certs):
    gw = await start(crl=certs.pki.crl([certs.bob]))
    with pytest.raises(ssl.SSLError):
        await call(gw, certs, certs.bob)
    assert (await call(gw, certs, certs.alice)).status == 200

"""Attacks on certificate identities over real TLS connections: look-alike subjects, spoofed and
injected headers, and the SAN kinds (DNS name, email) the other tests do not map."""

from __future__ import annotations

from mtls_auth_support import PLUGINS, call, config


async def _start(gateway_factory, certs, upstream, **plugin):
    cfg = config(certs, upstream, plugins={"mtls-auth": plugin})
    cfg["consumers"]["edge"] = {"credentials": {"mtls-auth": {"dns_names": ["Edge.Example.ORG"]}}}
    cfg["consumers"]["carol"] = {"credentials": {"mtls-auth": {"emails": ["Carol@Example.org"]}}}
    return await gateway_factory(cfg, plugins=PLUGINS)


async def test_dns_and_email_sans_map_case_insensitively(gateway_factory, certs, upstream):
    gw = await _start(gateway_factory, certs, upstream)
    edge = certs.pki.client("edge-proxy", dns=["edge.example.org"])
    carol = certs.pki.client("carol", emails=["carol@example.org"])
    for cert, consumer in ((edge, "edge"), (carol, "carol")):
        r = await call(gw, certs, cert)
        assert r.status == 200, r.body
        assert upstream.requests[-1].headers.get("x-consumer-username") == consumer
    other = certs.pki.client("other", dns=["edge.example.org.evil.example"], emails=["carol@example.org.evil"])
    assert (await call(gw, certs, other)).status == 403


async def test_look_alike_subjects_are_not_alice(gateway_factory, certs, upstream):
    """alice is mapped by subject CN=alice,O=Example; none of these certificates is hers."""
    gw = await _start(gateway_factory, certs, upstream)
    look_alikes = [
        certs.pki.client("alice,O=Example"),  # one CN holding the whole DN: CN=alice\,O=Example
        certs.pki.client("alice+O=Example"),  # a multi-valued look-alike: CN=alice\+O=Example
        certs.pki.client("Alice", organization="Example"),
        certs.pki.client("alice", organization="Example ", dns=["alice"]),
        certs.pki.client("alice", organization="Example,O=Other"),
    ]
    for cert in look_alikes:
        r = await call(gw, certs, cert)
        assert r.status == 403, (cert.subject, r.status)
    assert upstream.requests == []
    assert (await call(gw, certs, certs.alice)).status == 200


async def test_a_subject_cannot_inject_headers(gateway_factory, certs, upstream):
    gw = await _start(gateway_factory, certs, upstream)
    evil = certs.pki.client("x\r\nx-consumer-username: alice\r\n", dns=["edge.example.org"])
    r = await call(gw, certs, evil)
    assert r.status == 200, r.body
    seen = upstream.requests[-1].headers
    assert seen.get_all("x-consumer-username") == ["edge"]
    (subject,) = seen.get_all("x-client-cert-subject")
    assert "\r" not in subject and "\n" not in subject and "%0D%0A" in subject


async def test_spoofed_certificate_headers_in_every_spelling_are_dropped(gateway_factory, certs, upstream):
    gw = await _start(gateway_factory, certs, upstream, pem_header="x-forwarded-client-cert")
    spoofed = [("X-Client-Cert-Subject", "CN=admin"), ("x_client_cert_subject", "CN=admin"),
               ("x-client-cert-fingerprint", "00" * 32), ("X_Client_Cert_Fingerprint", "00" * 32),
               ("x-forwarded-client-cert", "Cert=forged"), ("x_forwarded_client_cert", "Cert=forged")]
    r = await call(gw, certs, certs.bob, headers=spoofed)
    assert r.status == 200, r.body
    seen = upstream.requests[-1].headers
    assert seen.get_all("x-client-cert-subject") == [certs.bob.subject]
    assert seen.get_all("x-client-cert-fingerprint") == [certs.bob.fingerprint]
    assert len(seen.get_all("x-forwarded-client-cert")) == 1
    assert "forged" not in seen.get("x-forwarded-client-cert")
    for name, _ in spoofed:
        if "_" in name:
            assert seen.get(name.lower()) is None, name

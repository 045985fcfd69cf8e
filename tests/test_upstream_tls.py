"""Upstream TLS: the per-upstream ``tls`` table (ca, cert/key, server_name, verify) against real
certificates made here with ``cryptography`` and real HTTPS upstreams on 127.0.0.1.

A certificate that does not verify is a 502 and a log line naming upstream, target and reason,
never a fallback; bad files are config errors with their key path; a reload re-reads them.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from triogate import ConfigError
from triogate.testing import UpstreamServer, load_gateway
from triogate.upstream import CircuitState

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@attrs.define
class Issued:
    """A certificate and its key, as objects and as PEM files."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: str
    key_path: str


def _write(tmp: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    cert_path, key_path = tmp / f"{stem}.crt", tmp / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert, key, str(cert_path), str(key_path))


def make_ca(tmp: Path, stem: str, cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(tmp, stem, cert, key)


def issue(
    tmp: Path, stem: str, ca: Issued, cn: str, *, names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    client: bool = False, not_after: datetime.datetime | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "triogate tests"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 10 * DAY).not_valid_after(not_after or NOW + 10 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                              else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _write(tmp, stem, builder.sign(ca.key, hashes.SHA256()), key)


@attrs.define
class PKI:
    dir: Path
    ca: Issued            # the CA the upstreams' certificates chain to
    other_ca: Issued      # an unrelated CA
    server: Issued        # localhost + 127.0.0.1, from ca
    expired: Issued       # localhost + 127.0.0.1, from ca, expired yesterday
    other_name: Issued    # only other.example, from ca
    client: Issued        # the gateway's client certificate, from ca
    self_signed: Issued   # its own CA, for 127.0.0.1


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca", "triogate test CA")
    other_ca = make_ca(d, "other-ca", "some other CA")
    self_ca = make_ca(d, "self", "127.0.0.1")
    return PKI(
        dir=d, ca=ca, other_ca=other_ca,
        server=issue(d, "server", ca, "localhost"),
        expired=issue(d, "expired", ca, "localhost", not_after=NOW - DAY),
        other_name=issue(d, "other-name", ca, "other.example", names=("other.example",)),
        client=issue(d, "client", ca, "gateway-client", names=(), client=True),
        self_signed=self_ca,
    )


def server_context(served: Issued, client_ca: Issued | None = None) -> ssl.SSLContext:
    """An upstream's server context; with ``client_ca`` it requires a client certificate from it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(served.cert_path, served.key_path)
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca.cert_path)
    return ctx


def config(url: str, tls: dict[str, Any] | None = None, **upstream: Any) -> dict[str, Any]:
    up: dict[str, Any] = {"targets": [{"url": url}], "retries": 0, **upstream}
    if tls is not None:
        up["tls"] = tls
    return {"upstreams": {"u": up}, "routes": {"r": {"paths": ["/"], "upstream": "u"}}}


UpstreamFactory = Callable[..., Awaitable[UpstreamServer]]


async def https_upstream(upstream_factory: UpstreamFactory, served: Issued,
                         client_ca: Issued | None = None) -> UpstreamServer:
    return await upstream_factory(ssl_context=server_context(served, client_ca))


def tls_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "upstream 'u' target https://" in r.getMessage()]


# ------------------------------------------------------------------ verification


async def test_verified_with_the_configured_ca(pki, upstream_factory, gateway_factory):
    up = await https_upstream(upstream_factory, pki.server)
    gw = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path}))
    for i in range(2):
        r = await gw.client.get(f"/ok/{i}")
        assert r.status == 200, r.content
        assert r.json()["path"] == f"/ok/{i}"
    assert up.connections == 1  # the verified connection is pooled and reused
    assert up.peer_certs == [None]  # no client certificate configured, none presented


async def test_a_certificate_from_another_ca_is_a_502_with_a_log_line(pki, upstream_factory, gateway_factory,
                                                                      caplog):
    up = await https_upstream(upstream_factory, pki.server)
    gw = await gateway_factory(config(up.url, {"ca": pki.other_ca.cert_path}))
    with caplog.at_level(logging.ERROR, logger="triogate"):
        r = await gw.client.get("/x")
    assert r.status == 502
    assert r.headers.get("content-type") == "application/problem+json"
    problem = r.json()
    assert problem["detail"] == "upstream TLS certificate did not verify"
    assert problem["request_id"]
    assert up.requests == []  # nothing was sent to an upstream that did not verify
    [line] = tls_log(caplog)
    assert line == (f"upstream 'u' target {up.url}: certificate verification failed (server name '127.0.0.1'): "
                    "unable to get local issuer certificate")


async def test_the_system_trust_store_does_not_know_a_private_ca(pki, upstream_factory, gateway_factory, caplog):
    up = await https_upstream(upstream_factory, pki.server)
    gw = await gateway_factory(config(up.url))  # no tls table: the default verifies against the system CAs
    with caplog.at_level(logging.ERROR, logger="triogate"):
        assert (await gw.client.get("/x")).status == 502
    assert "certificate verification failed" in tls_log(caplog)[0]


async def test_a_wrong_name_is_a_502_and_server_name_fixes_it(pki, upstream_factory, gateway_factory, caplog):
    up = await https_upstream(upstream_factory, pki.other_name)
    gw = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path}))
    with caplog.at_level(logging.ERROR, logger="triogate"):
        assert (await gw.client.get("/x")).status == 502
    [line] = tls_log(caplog)
    assert "certificate verification failed (server name '127.0.0.1')" in line
    assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in line
    assert up.requests == []

    named = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path, "server_name": "other.example"}))
    r = await named.client.get("/named")
    assert r.status == 200
    assert r.json()["headers"]["host"] == [f"127.0.0.1:{up.port}"]  # server_name is TLS only, not the Host


async def test_an_expired_certificate_is_a_502(pki, upstream_factory, gateway_factory, caplog):
    up = await https_upstream(upstream_factory, pki.expired)
    gw = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path}))
    with caplog.at_level(logging.ERROR, logger="triogate"):
        assert (await gw.client.get("/x")).status == 502
    assert tls_log(caplog)[0].endswith(": certificate has expired")


async def test_verify_false_accepts_a_self_signed_upstream(pki, upstream_factory, gateway_factory):
    up = await https_upstream(upstream_factory, pki.self_signed)
    assert (await (await gateway_factory(config(up.url))).client.get("/x")).status == 502
    gw = await gateway_factory(config(up.url, {"verify": False}))
    assert (await gw.client.get("/x")).status == 200


async def test_a_verification_failure_counts_against_the_target(pki, upstream_factory, gateway_factory):
    """The certificate is the target's: failures open its circuit, and the retry goes to the good one."""
    bad = await https_upstream(upstream_factory, pki.expired)
    good = await https_upstream(upstream_factory, pki.server)
    cfg = config(bad.url, {"ca": pki.ca.cert_path}, retries=1, circuit_breaker={"failures": 2})
    cfg["upstreams"]["u"]["targets"].append({"url": good.url})
    gw = await gateway_factory(cfg)
    for _ in range(4):
        assert (await gw.client.get("/x")).status == 200  # a failed handshake sent nothing: retried
    bad_target, good_target = gw.gateway.upstreams["u"].targets
    assert bad_target.breaker.state is CircuitState.OPEN
    assert good_target.breaker.state is CircuitState.CLOSED
    assert bad.requests == []
    assert len(good.requests) == 4


async def test_health_checks_use_the_tls_settings(pki, upstream_factory, gateway_factory):
    ok = await https_upstream(upstream_factory, pki.server)
    expired = await https_upstream(upstream_factory, pki.expired)
    cfg = config(ok.url, {"ca": pki.ca.cert_path},
                 health_check={"path": "/health", "interval": 0.05, "timeout": 2.0,
                               "unhealthy_threshold": 1, "healthy_threshold": 1})
    cfg["upstreams"]["u"]["targets"].append({"url": expired.url})
    gw = await gateway_factory(cfg)
    good_target, bad_target = gw.gateway.upstreams["u"].targets
    with trio.fail_after(10):
        while bad_target.healthy or not any(r.path == "/health" for r in ok.requests):
            await trio.sleep(0.05)
    assert good_target.healthy  # probed over TLS verified with tls.ca
    assert expired.requests == []  # the expired target's probes never got past the handshake


# ------------------------------------------------------------------ client certificates (upstream mTLS)


async def test_an_upstream_requiring_a_client_certificate(pki, upstream_factory, gateway_factory, caplog):
    up = await https_upstream(upstream_factory, pki.server, client_ca=pki.ca)
    without = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path}))
    with caplog.at_level(logging.ERROR, logger="triogate"):
        r = await without.client.get("/x")
    assert r.status == 502
    assert r.json()["detail"] == "upstream TLS handshake failed"
    assert up.requests == []
    [line] = tls_log(caplog)
    assert line.startswith(f"upstream 'u' target {up.url}: TLS handshake failed (server name '127.0.0.1'): ")
    assert "certificate required" in line
    assert up.tls_failures  # refused by the upstream's handshake

    with_cert = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path, "cert": pki.client.cert_path,
                                                      "key": pki.client.key_path}))
    r = await with_cert.client.get("/mtls")
    assert r.status == 200
    assert r.json()["path"] == "/mtls"
    subject = dict(pair[0] for pair in up.peer_certs[-1]["subject"])
    assert subject == {"organizationName": "triogate tests", "commonName": "gateway-client"}


async def test_cert_and_key_in_one_file(pki, upstream_factory, gateway_factory, tmp_path):
    up = await https_upstream(upstream_factory, pki.server, client_ca=pki.ca)
    both = tmp_path / "client-with-key.pem"
    both.write_text(Path(pki.client.cert_path).read_text() + Path(pki.client.key_path).read_text())
    gw = await gateway_factory(config(up.url, {"ca": pki.ca.cert_path, "cert": str(both)}))
    assert (await gw.client.get("/x")).status == 200


# ------------------------------------------------------------------ config errors


def check_errors(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_gateway(cfg)
    return info.value.errors


def test_missing_and_garbage_files_are_config_errors_with_their_key_path(pki, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("this is not PEM\n")
    missing = str(tmp_path / "missing.pem")
    url = "https://127.0.0.1:9"
    assert check_errors(config(url, {"ca": missing})) == [f"upstreams.u.tls.ca: no such file: {missing!r}"]
    assert check_errors(config(url, {"ca": str(garbage)})) == [
        (f"upstreams.u.tls.ca: {str(garbage)!r} holds no PEM certificate (no start line: cadata does not contain "
         "a certificate)")]
    assert check_errors(config(url, {"ca": str(tmp_path)})) == [
        f"upstreams.u.tls.ca: {str(tmp_path)!r} is a directory, expected a PEM file"]
    assert check_errors(config(url, {"cert": missing, "key": pki.client.key_path})) == [
        f"upstreams.u.tls.cert: no such file: {missing!r}"]
    assert check_errors(config(url, {"cert": str(garbage), "key": pki.client.key_path})) == [
        (f"upstreams.u.tls.cert: {str(garbage)!r} holds no PEM certificate (no start line: cadata does not contain "
         "a certificate)")]
    assert check_errors(config(url, {"cert": pki.client.cert_path, "key": missing})) == [
        f"upstreams.u.tls.key: no such file: {missing!r}"]
    assert check_errors(config(url, {"cert": pki.client.cert_path, "key": str(garbage)})) == [
        f"upstreams.u.tls.key: {str(garbage)!r} holds no PEM private key"]
    assert check_errors(config(url, {"cert": pki.client.cert_path, "key": pki.server.key_path})) == [
        "upstreams.u.tls.key: the private key does not match the certificate in tls.cert"]
    assert check_errors(config(url, {"cert": pki.client.cert_path})) == [
        f"upstreams.u.tls.cert: {pki.client.cert_path!r} (and tls.key is unset) holds no PEM private key"]


def test_an_encrypted_key_is_a_config_error_not_a_prompt(pki, tmp_path):
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(pki.client.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    [error] = check_errors(config("https://127.0.0.1:9", {"cert": pki.client.cert_path, "key": str(encrypted)}))
    assert error.startswith("upstreams.u.tls.key: the private key is encrypted")


def test_inconsistent_tls_tables(pki):
    https, http = "https://127.0.0.1:9", "http://127.0.0.1:9"
    assert check_errors(config(https, {"verify": False}, tls_verify=False)) == [
        "upstreams.u.tls_verify: deprecated alias of upstreams.u.tls.verify, and both are set: keep only tls.verify"]
    assert check_errors(config(http, {"ca": pki.ca.cert_path})) == [
        "upstreams.u.tls: applies to https:// targets only, and this upstream has none"]
    assert check_errors(config(https, {"key": pki.client.key_path})) == [
        "upstreams.u.tls.key: a key needs tls.cert, the client certificate it belongs to"]
    assert check_errors(config(https, {"ca": pki.ca.cert_path, "verify": False})) == [
        "upstreams.u.tls.ca: has no effect when verification is off (tls.verify = false): remove one of them"]
    assert check_errors(config(https, {"server_name": "https://api.example:443"})) == [
        ("upstreams.u.tls.server_name: expected a host name or IP address (no scheme or port), "
         "got 'https://api.example:443'")]
    assert check_errors(config(https, {"verify": "no"})) == [
        'upstreams.u.tls.verify: expected true or false, got a string "no"']
    assert check_errors(config(https, {"ca_file": "x"})) == [
        "upstreams.u.tls.ca_file: unknown key (expected one of ca, cert, key, server_name, verify)"]


def test_relative_paths_are_relative_to_the_config_file(pki, tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(Path(pki.ca.cert_path).read_bytes())
    (tmp_path / "gateway.toml").write_text(
        '[upstreams.u]\ntargets = [{ url = "https://127.0.0.1:9" }]\ntls = { ca = "certs/ca.pem" }\n')
    from triogate.config import load_config

    assert Path.cwd() != tmp_path
    cfg = load_config(tmp_path / "gateway.toml")  # parsing checks the file...
    gateway = load_gateway(cfg)  # ...and the upstream built from it reads it again, from the same place
    assert gateway.upstreams["u"].targets[0].pool.server_name == "127.0.0.1"


def run_check(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "gateway.toml").write_text(toml)
    env = {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-m", "triogate", "check", "-c", "gateway.toml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_triogate_check_reports_bad_tls_files_with_exit_2(pki, tmp_path):
    (tmp_path / "garbage.key").write_text("-----BEGIN NOTHING-----\n")
    done = run_check(tmp_path, f"""
[upstreams.api]
targets = [{{ url = "https://127.0.0.1:9443" }}]
tls = {{ ca = "missing-ca.pem", cert = "{pki.client.cert_path}", key = "garbage.key" }}

[upstreams.other]
targets = [{{ url = "https://127.0.0.1:9444" }}]
tls = {{ cert = "{tmp_path / 'nope.crt'}", key = "{pki.client.key_path}" }}
""")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "triogate: invalid configuration (2 errors):",
        f"  gateway.toml: upstreams.api.tls.ca: no such file: {str(tmp_path / 'missing-ca.pem')!r}",
        f"  gateway.toml: upstreams.other.tls.cert: no such file: {str(tmp_path / 'nope.crt')!r}",
    ]
    # the key is checked once the CA loads
    (tmp_path / "missing-ca.pem").write_bytes(Path(pki.ca.cert_path).read_bytes())
    (tmp_path / "nope.crt").write_bytes(Path(pki.client.cert_path).read_bytes())
    done = run_check(tmp_path, (tmp_path / "gateway.toml").read_text())
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[1:] == [
        f"  gateway.toml: upstreams.api.tls.key: {str(tmp_path / 'garbage.key')!r} holds no PEM private key"]


def test_tls_verify_still_works_with_a_deprecation_warning_in_check(tmp_path):
    done = run_check(tmp_path, """
[upstreams.legacy]
targets = [{ url = "https://127.0.0.1:9443" }]
tls_verify = false
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gateway.toml: ok (0 routes, 1 upstream, 0 plugin instances)\n"
    assert done.stderr == ("triogate: warning: upstreams.legacy.tls_verify is deprecated and will be removed: "
                           "write upstreams.legacy.tls.verify = false instead\n")


async def test_tls_verify_alias_turns_verification_off(pki, upstream_factory, gateway_factory, caplog):
    up = await https_upstream(upstream_factory, pki.self_signed)
    with caplog.at_level(logging.WARNING, logger="triogate"):
        gw = await gateway_factory(config(up.url, tls_verify=False))
    assert (await gw.client.get("/x")).status == 200
    assert "upstreams.u.tls_verify is deprecated" in caplog.text


# ------------------------------------------------------------------ reload


async def test_reload_reads_a_changed_ca_file(pki, upstream_factory, gateway_factory, tmp_path):
    up = await https_upstream(upstream_factory, pki.server)
    ca_file = tmp_path / "upstream-ca.pem"
    ca_file.write_bytes(Path(pki.other_ca.cert_path).read_bytes())
    cfg = config(up.url, {"ca": str(ca_file)})
    gw = await gateway_factory(cfg)
    assert (await gw.client.get("/x")).status == 502

    ca_file.write_bytes(Path(pki.ca.cert_path).read_bytes())  # the CA file is replaced, the config is not
    assert await gw.reload(cfg) == []
    assert (await gw.client.get("/x")).status == 200

    ca_file.write_text("garbage\n")  # a reload with a broken CA file is refused: the old one keeps serving
    errors = await gw.reload(cfg)
    assert errors == [(f"<test>: upstreams.u.tls.ca: {str(ca_file)!r} holds no PEM certificate "
                       "(no start line: cadata does not contain a certificate)")]
    assert (await gw.client.get("/x")).status == 200

"""A throw-away certificate authority for mutual-TLS tests: real certificates, written as PEM files.

``TestPKI(tmp_path)`` creates a CA (``ca_file``); :meth:`TestPKI.server` issues the listener's
certificate, :meth:`TestPKI.client` client certificates (expired or with SANs when asked),
:meth:`TestPKI.crl` a revocation list, :meth:`TestPKI.client_context` the ``ssl`` context a
client presents one with. EC P-256 keys keep it fast (a few ms per certificate).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
from collections.abc import Iterable
from pathlib import Path

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Issued", "TestPKI", "tls_request"]

_DAY = datetime.timedelta(days=1)


@attrs.frozen
class Issued:
    """An issued certificate: its files, DER, serial, RFC 4514 subject and SHA-256 fingerprint (hex)."""

    cert_file: str
    key_file: str
    der: bytes = attrs.field(repr=False)
    serial: int
    subject: str
    fingerprint: str


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


class TestPKI:
    """One CA in ``directory`` (``<name>-ca.pem``); issue certificates and CRLs with it."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "triogate test CA") -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = name.replace(" ", "-")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + 30 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = str(self.dir / f"{self.prefix}-ca.pem")
        Path(self.ca_file).write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._count = 0

    def _issue(self, stem: str, subject: x509.Name, sans: list[x509.GeneralName], purpose: x509.ObjectIdentifier,
               *, not_before: datetime.datetime, not_after: datetime.datetime) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        self._count += 1
        cert_path = self.dir / f"{self.prefix}-{stem}-{self._count}.pem"
        key_path = self.dir / f"{self.prefix}-{stem}-{self._count}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        der = cert.public_bytes(serialization.Encoding.DER)
        return Issued(str(cert_path), str(key_path), der, cert.serial_number, cert.subject.rfc4514_string(),
                      hashlib.sha256(der).hexdigest())

    def server(self, host: str = "127.0.0.1") -> Issued:
        """A server certificate for ``host`` (an IP address or DNS name)."""
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            san = x509.DNSName(host)
        now = datetime.datetime.now(datetime.UTC)
        return self._issue("server", x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), [san],
                           ExtendedKeyUsageOID.SERVER_AUTH, not_before=now - _DAY, not_after=now + 30 * _DAY)

    def client(self, common_name: str, *, organization: str | None = None, dns: Iterable[str] = (),
               uris: Iterable[str] = (), emails: Iterable[str] = (), expired: bool = False,
               purpose: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH) -> Issued:
        """A client certificate (``expired``: its validity ended yesterday)."""
        attrs_ = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:  # most general first in the DER, so the RFC 4514 form reads CN=...,O=...
            attrs_.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        sans += [x509.RFC822Name(e) for e in emails]
        now = datetime.datetime.now(datetime.UTC)
        before, after = (now - 10 * _DAY, now - _DAY) if expired else (now - _DAY, now + 30 * _DAY)
        return self._issue("client", x509.Name(attrs_), sans, purpose, not_before=before, not_after=after)

    def crl(self, revoked: Iterable[Issued] = (), *, name: str = "crl") -> str:
        """A PEM CRL signed by the CA revoking ``revoked``; returns its path."""
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.name)
                   .last_update(now - datetime.timedelta(minutes=5)).next_update(now + 7 * _DAY)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False)
                   .add_extension(x509.CRLNumber(1), False))
        for item in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(item.serial).revocation_date(now).build())
        path = self.dir / f"{self.prefix}-{name}.pem"
        path.write_bytes(builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        return str(path)

    def client_context(self, cert: Issued | None = None, *, alpn: Iterable[str] = ("http/1.1",)) -> ssl.SSLContext:
        """A client ``ssl`` context trusting this CA, presenting ``cert`` when given."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if cert is not None:
            ctx.load_cert_chain(cert.cert_file, cert.key_file)
        ctx.set_alpn_protocols(list(alpn))
        return ctx


async def tls_request(port: int, data: bytes, ssl_context: ssl.SSLContext, *, host: str = "127.0.0.1",
                      timeout: float = 5.0) -> bytes:
    """Send ``data`` over TLS and return the answer (until the server closes or ``timeout``).

    A handshake the gateway refuses raises the :class:`ssl.SSLError` (with TLS 1.3 the client learns
    that its certificate was refused only when it reads: the alert arrives after its handshake).
    """
    stream = trio.SSLStream(await trio.open_tcp_stream(host, port), ssl_context, server_hostname=host)
    out = bytearray()
    try:
        with trio.fail_after(timeout):
            await stream.do_handshake()
            await stream.send_all(data)
            while chunk := await stream.receive_some(65536):
                out += chunk
    except trio.BrokenResourceError as exc:
        if isinstance(exc.__cause__, ssl.SSLError) and not isinstance(exc.__cause__, ssl.SSLEOFError):
            raise exc.__cause__ from None
        if not out:
            raise ssl.SSLError(f"connection closed during the handshake: {exc.__cause__!r}") from exc
    finally:
        await trio.aclose_forcefully(stream)
    return bytes(out)

"""The verified client certificate of a mutual-TLS connection, as plugins see it (``ctx.client_cert``).

The listener's ssl context verified the certificate during the handshake (chain, expiry, purpose,
revocation); this module only describes it. It is parsed once per connection, with the
``cryptography`` package (the ssl module's dict form has no RFC 4514 subject and drops SAN types).
"""

from __future__ import annotations

import datetime
import hashlib
import ssl

import attrs
import trio

__all__ = ["ClientCert", "peer_certificate"]


@attrs.frozen
class ClientCert:
    """One verified client certificate.

    ``subject``/``issuer`` are RFC 4514 strings (``CN=alice,O=Example``, most specific RDN first);
    ``fingerprint`` is the lowercase hex SHA-256 of the DER; the SAN lists keep the certificate's order.
    """

    der: bytes = attrs.field(repr=False)
    subject: str
    issuer: str
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime
    fingerprint: str
    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    @property
    def pem(self) -> str:
        """The certificate in PEM form (e.g. to forward it upstream URL-encoded)."""
        return ssl.DER_cert_to_PEM_cert(self.der)

    @classmethod
    def from_der(cls, der: bytes) -> ClientCert:
        """Parse a DER certificate; ``ValueError`` if it is not one."""
        # ~28 ms at import, deferred: only a listener with client_auth parses certificates
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        dns: tuple[str, ...] = ()
        uris: tuple[str, ...] = ()
        emails: tuple[str, ...] = ()
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            pass
        else:
            dns = tuple(san.get_values_for_type(x509.DNSName))
            uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
            emails = tuple(san.get_values_for_type(x509.RFC822Name))
        return cls(
            der=der, subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
            serial=cert.serial_number, not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            fingerprint=hashlib.sha256(der).hexdigest(), dns_names=dns, uris=uris, emails=emails,
        )


def peer_certificate(stream: trio.abc.Stream) -> ClientCert | None:
    """The verified certificate a client presented on ``stream`` (a handshaken ``trio.SSLStream``), if any.

    Only a context that asked for one (``client_auth`` optional/required) gets a certificate, and
    then only a verified one: an unverifiable certificate failed the handshake.
    """
    if not isinstance(stream, trio.SSLStream) or stream.context.verify_mode == ssl.CERT_NONE:
        return None
    der = stream.getpeercert(binary_form=True)
    return ClientCert.from_der(der) if der else None

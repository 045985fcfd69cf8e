"""Settings of the mtls-auth plugin."""

from __future__ import annotations

import attrs
import triogate
from triogate import fields

_header_or_off = fields.check(lambda v: v == "" or fields.is_header_name(v), 'a header name, or "" for none')


@attrs.define(frozen=True)
class MtlsAuthConfig:
    anonymous: str | None = triogate.setting(
        None, description="consumer used when the request carries no client certificate (instead of 401); "
                          "must exist in [consumers]")
    subject_header: str = triogate.setting(
        "x-client-cert-subject", description="request header telling the upstream the certificate's RFC 4514 "
                                             'subject ("": not sent); client copies are always dropped',
        validator=_header_or_off)
    fingerprint_header: str = triogate.setting(
        "x-client-cert-fingerprint", description="request header telling the upstream the certificate's SHA-256 "
                                                 'fingerprint, lowercase hex ("": not sent)',
        validator=_header_or_off)
    pem_header: str = triogate.setting(
        "", description="request header carrying the whole certificate as URL-encoded PEM, like Envoy's "
                        'x-forwarded-client-cert Cert= ("": not sent)', validator=_header_or_off)
    consumer_headers: bool = triogate.setting(
        True, description="tell the upstream x-consumer-username / x-consumer-custom-id / x-anonymous-consumer "
                          "(client copies are always dropped)")
    realm: str = triogate.setting(
        "triogate", description="realm in the WWW-Authenticate challenge of a request without a certificate",
        validator=fields.realm)

    def __attrs_post_init__(self) -> None:
        names = [n.lower() for n in (self.subject_header, self.fingerprint_header, self.pem_header) if n]
        if len(names) != len(set(names)):
            raise ValueError("subject_header, fingerprint_header, pem_header: each needs its own header name")

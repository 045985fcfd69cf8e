"""The mtls-auth plugin: the client certificate the listener verified names the consumer.

The TLS handshake did the verification (chain to the listener's ``client_ca``, expiry, purpose,
CRL); this plugin only maps the certificate to a consumer. No certificate is a missing credential
(401 with a challenge, or the ``anonymous`` consumer); a verified certificate that maps to no
consumer is a 403, unless another auth plugin on the route authenticates the request (an OR).
"""

from __future__ import annotations

from urllib.parse import quote

import triogate
from triogate.auth import (
    AUTH_FAILED,
    check_anonymous,
    consumer_principal,
    is_authenticated,
    missing_credential,
    note_outcome,
    set_consumer_headers,
)

from .config import MtlsAuthConfig
from .identities import IdentityTable

__all__ = ["MtlsAuthPlugin"]

def header_safe(text: str) -> str:
    """``text`` with '%', controls and non-ASCII percent-encoded (UTF-8): a subject may hold any of them."""
    return "".join(ch if " " <= ch <= "~" and ch != "%" else quote(ch, safe="") for ch in text)


#: ctx.state key: the request showed a verified certificate that maps to no consumer
UNKNOWN = "mtls-auth.unknown_certificate"


class MtlsAuthPlugin(triogate.Plugin):
    priority = 1600
    #: certificate identities (subjects, SANs, fingerprints) are not secrets (``triogate diff``)
    credential_secrets = frozenset()
    Config = MtlsAuthConfig

    def __init__(self, config: MtlsAuthConfig, gateway: triogate.GatewayServices, route: str | None = None) -> None:
        super().__init__(config, gateway, route)
        self.identities = IdentityTable(gateway.credentials("mtls-auth"))
        self.anonymous = check_anonymous(gateway, config.anonymous)
        self.challenge = f'MutualTLS realm="{config.realm}"'

    def identity_headers(self) -> list[str]:
        """The certificate headers: the core drops client-sent copies before any plugin runs."""
        c = self.config
        return [h for h in (c.subject_header, c.fingerprint_header, c.pem_header) if h]

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        if is_authenticated(ctx):
            return
        cert = ctx.client_cert
        if cert is None:
            missing_credential(ctx, self.challenge, anonymous=self.anonymous, method="mtls-auth")
            return
        match = self.identities.find(cert)
        if match is None:
            # a valid certificate of nobody we know: no anonymous access for it (as for a wrong key), and
            # no challenge either (another certificate would not be a retry of this request): 403 below
            note_outcome(ctx, "mtls-auth:unknown_certificate")
            ctx.state[AUTH_FAILED] = True
            ctx.state[UNKNOWN] = True
            if ctx.principal is not None and ctx.principal.anonymous:
                ctx.principal = None
            return
        consumer, how = match
        ctx.principal = consumer_principal(
            self.gateway, consumer, method="mtls-auth", credential=f"{consumer}/mtls-auth/{how}",
            claims={"subject": cert.subject, "fingerprint": cert.fingerprint, "serial": str(cert.serial)})

    @triogate.hookimpl(tryfirst=True)
    async def transform(self, ctx: triogate.Context) -> triogate.Response | None:
        # tryfirst: nothing (a cache, a rate limit) may act on the request before it is refused
        if ctx.principal is None and ctx.state.get(UNKNOWN):
            return ctx.problem(403, "the client certificate belongs to no consumer")
        c = self.config
        cert = ctx.client_cert
        if cert is not None:
            h = ctx.request.headers
            if c.subject_header:
                h.set(c.subject_header, header_safe(cert.subject))
            if c.fingerprint_header:
                h.set(c.fingerprint_header, cert.fingerprint)
            if c.pem_header:
                h.set(c.pem_header, quote(cert.pem, safe=""))
        if c.consumer_headers:
            set_consumer_headers(ctx)
        return None

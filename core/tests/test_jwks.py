"""triogate.jwks, the key machinery jwt and oidc share: discovery fills ``metadata``, keys follow
the provider, failures keep the last good keys and never raise to the caller."""

from __future__ import annotations

import pytest
import triogate
from triogate.jwks import JWKSError, JWKSSource, discovery_url, fetch_json, running_source
from triogate.testing import IdentityProvider


def test_discovery_url() -> None:
    assert discovery_url("https://id.example/realms/a/") == "https://id.example/realms/a/.well-known/openid-configuration"
    assert discovery_url("https://id.example") == "https://id.example/.well-known/openid-configuration"


async def test_discovery_fills_metadata_and_keys(identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    kid = idp.add_key("ES256")
    http = triogate.HTTPClient()
    try:
        async with running_source(http, jwks_uri=None, issuer=idp.issuer, ttl=60, min_interval=0, timeout=2) as src:
            assert await src.refresh()
            assert src.metadata is not None and src.metadata["token_endpoint"] == idp.token_endpoint
            assert src.jwks_uri == idp.jwks_uri
            assert src.ring.has_kid(kid) and [k.kid for k in src.ring.candidates(kid, "ES256")] == [kid]
            assert src.ring.candidates(kid, "RS256") == []  # an EC key never verifies RS256
    finally:
        await http.aclose()


async def test_wrong_issuer_in_the_document_is_refused(identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    http = triogate.HTTPClient()
    try:
        src = JWKSSource(http, jwks_uri=None, issuer=idp.issuer + "/other", ttl=60, min_interval=0, timeout=2)
        assert not await src.refresh()  # the 404 of another path, or another issuer: no keys, no metadata
        assert src.metadata is None and src.failures == 1
    finally:
        await http.aclose()


async def test_fetch_json_errors(identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    http = triogate.HTTPClient()
    try:
        assert (await fetch_json(http, discovery_url(idp.issuer), timeout=2))["issuer"] == idp.issuer
        with pytest.raises(JWKSError, match="status 404"):
            await fetch_json(http, idp.url + "/nope", timeout=2)
        idp.outage = "hang"
        with pytest.raises(JWKSError, match="timed out|Timeout"):
            await fetch_json(http, idp.jwks_uri, timeout=0.2)
    finally:
        idp.outage = None
        await http.aclose()

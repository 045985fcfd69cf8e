"""Active tokens mapped to consumers: acl groups and rate limits per consumer, with a real IdP and gateway."""

from __future__ import annotations

from typing import Any

import pytest
import triogate
from introspection_support import bearer, config
from triogate.testing import IdentityProvider, UpstreamServer
from triogate_acl import AclPlugin
from triogate_oauth2_introspection import IntrospectionPlugin
from triogate_rate_limit import RateLimitPlugin

CONSUMERS: dict[str, Any] = {
    "acme": {"groups": ["partners"], "custom_id": "C-1",
             "credentials": {"oauth2-introspection": {"client_id": ["acme-web", "acme-batch"], "sub": "svc-acme"}}},
    "globex": {"groups": ["trial"], "custom_id": "C-2",
               "credentials": {"oauth2-introspection": {"client_id": "globex-app"}}},
}


async def test_client_id_maps_to_consumer(start, identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    gw = await start(CONSUMERS)

    async def consumer_of(token: str, **headers: str) -> tuple[list[str] | None, list[str] | None]:
        r = await gw.client.get("/api/x", headers={**headers, **bearer(token)})
        assert r.status == 200, r.content
        h = r.json()["headers"]
        return h.get("x-consumer-username"), h.get("x-consumer-custom-id")

    assert await consumer_of(idp.issue_opaque(client_id="acme-web")) == (["acme"], ["C-1"])
    assert await consumer_of(idp.issue_opaque(client_id="acme-batch", sub="x")) == (["acme"], ["C-1"])
    assert await consumer_of(idp.issue_opaque(client_id="globex-app")) == (["globex"], ["C-2"])
    # no consumer (today's behaviour): the token passes without one; a client's copy is dropped
    assert await consumer_of(idp.issue_opaque(client_id="stranger"), **{"x-consumer-username": "acme"}) == (None, None)
    assert await consumer_of(idp.issue_opaque(client_id=None, sub="svc-acme")) == (None, None)  # sub: not the claim


@pytest.mark.parametrize("settings, fields, expected", [
    ({"consumer_claim": "sub"}, {"sub": "svc-acme", "client_id": "globex-app"}, "acme"),
    ({"consumer_claim": "username", "consumer_by": "name"}, {"username": "globex"}, "globex"),
    ({"consumer_claim": "sub", "consumer_by": "custom_id"}, {"sub": "C-2"}, "globex"),
    ({"consumer_claim": "ext.org", "consumer_by": "name"}, {"ext": {"org": "acme"}}, "acme"),
])
async def test_configurable_claim_and_field(start, identity_provider: IdentityProvider, settings, fields,
                                            expected) -> None:
    gw = await start(CONSUMERS, **settings)
    r = await gw.client.get("/api/x", headers=bearer(identity_provider.issue_opaque(**fields)))
    assert r.json()["headers"]["x-consumer-username"] == [expected]


async def test_require_consumer(start, identity_provider: IdentityProvider, upstream: UpstreamServer) -> None:
    idp = identity_provider
    gw = await start(CONSUMERS, require_consumer=True)
    r = await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(client_id="stranger")))
    assert r.status == 403, r.content
    assert r.headers["content-type"] == "application/problem+json" and "request_id" in r.json()
    assert upstream.requests == []
    assert (await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(client_id="globex-app")))).status == 200


async def test_acl_and_rate_limit_per_consumer(gateway_factory, upstream: UpstreamServer,
                                               identity_provider: IdentityProvider) -> None:
    idp = identity_provider
    cfg = config(upstream, idp, {**CONSUMERS, "initech": {"groups": ["banned"], "credentials": {
        "oauth2-introspection": {"client_id": "initech-app"}}}})
    cfg["routes"]["api"]["plugins"].update({"acl": {"deny": ["banned"]},
                                            "rate-limit": {"limits": ["2/minute"], "key": "consumer"}})
    gw = await gateway_factory(cfg, plugins={"oauth2-introspection": IntrospectionPlugin, "acl": AclPlugin,
                                             "rate-limit": RateLimitPlugin})
    acme = [idp.issue_opaque(client_id="acme-web"), idp.issue_opaque(client_id="acme-batch")]
    globex = idp.issue_opaque(client_id="globex-app")
    # two acme tokens share acme's budget: the limit is per consumer, not per token
    assert [(await gw.client.get("/api/x", headers=bearer(t))).status for t in (*acme, acme[0])] == [200, 200, 429]
    assert (await gw.client.get("/api/x", headers=bearer(globex))).status == 200
    r = await gw.client.get("/api/x", headers=bearer(idp.issue_opaque(client_id="initech-app")))
    assert r.status == 403, r.content


async def load(gateway_factory, identity_provider: IdentityProvider, consumers: dict[str, Any],
               **settings: Any) -> list[str]:
    settings = {"introspection_url": identity_provider.introspection_url, **settings}
    with pytest.raises(triogate.ConfigError) as err:
        await gateway_factory({"routes": {"r": {"paths": ["/"], "plugins": {"oauth2-introspection": settings}}},
                               "consumers": consumers}, plugins={"oauth2-introspection": IntrospectionPlugin})
    return err.value.errors


@pytest.mark.parametrize("consumers, settings, message", [
    ({"a": {"credentials": {"oauth2-introspection": {"client_id": "x"}}},
      "b": {"credentials": {"oauth2-introspection": {"client_id": ["y", "x"]}}}}, {},
     "consumers.b.credentials.oauth2-introspection.client_id: 'x' already belongs to consumer 'a'"),
    ({"a": {"credentials": {"oauth2-introspection": {"client_id": 3}}}}, {},
     "consumers.a.credentials.oauth2-introspection.client_id: expected a non-empty string"),
    ({"a": {"credentials": {"oauth2-introspection": {}}}}, {},
     "consumers.a.credentials.oauth2-introspection: expected a table"),
    ({"a": {"custom_id": "z"}, "b": {"custom_id": "z"}}, {"consumer_by": "custom_id"},
     "consumers.b.custom_id: 'z' is also the custom_id of consumer 'a'"),
    ({}, {"consumer_claim": "", "require_consumer": True}, "require_consumer: needs consumer_claim"),
    ({}, {"consumer_by": "email"}, "consumer_by"),
])
async def test_bad_consumer_config(gateway_factory, identity_provider: IdentityProvider, consumers, settings,
                                   message) -> None:
    errors = await load(gateway_factory, identity_provider, consumers, **settings)
    assert any(e.startswith("routes.r.plugins.oauth2-introspection") and message in e for e in errors), errors

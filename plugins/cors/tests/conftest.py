import pytest
import triogate
from triogate.testing import UpstreamServer
from triogate_cors import CorsPlugin

APP = "https://app.example.com"


class ChallengeAuth(triogate.Plugin):
    """An auth plugin that lets nobody in: proves preflights never reach the auth phase."""

    priority = 1200
    calls = 0

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> None:
        ChallengeAuth.calls += 1
        ctx.challenge('Bearer realm="test"')


@pytest.fixture
def challenge_auth() -> type[ChallengeAuth]:
    return ChallengeAuth


@pytest.fixture
def make_gateway(upstream: UpstreamServer, gateway_factory):
    ChallengeAuth.calls = 0

    async def make(cors: dict, *, where: str = "global", auth: bool = False, methods: list[str] | None = None):
        route: dict = {"paths": ["/api"], "upstream": "echo", "strip_prefix": "/api", "plugins": {}}
        if methods is not None:
            route["methods"] = methods
        cfg: dict = {"upstreams": {"echo": {"targets": [{"url": upstream.url}]}}, "routes": {"api": route}}
        if where == "global":
            cfg["plugins"] = {"cors": cors}
        else:
            route["plugins"]["cors"] = cors
        if auth:
            route["plugins"]["challenge"] = {}
        return await gateway_factory(cfg, plugins={"cors": CorsPlugin, "challenge": ChallengeAuth})

    return make

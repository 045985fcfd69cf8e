"""A demo OpenID provider on 127.0.0.1:9401 for the ``/web`` login route of the default gateway.toml.

It is ``triogate.testing``'s identity provider: every login is approved at once as the demo user
Ada Lovelace (``sub = "1"``), so the whole authorization-code flow can be tried with a browser or
``curl -L`` and a cookie jar, without registering anywhere. Never use it for anything real.
"""

from __future__ import annotations

from typing import Any

import trio
from triogate.testing.idp import IdentityProvider

__all__ = ["IDP_PORT", "serve_idp"]

IDP_PORT = 9401
DEMO_USER = {"sub": "1", "name": "Ada Lovelace", "email": "ada@example.com", "groups": ["staff"]}


async def serve_idp(task_status: Any = trio.TASK_STATUS_IGNORED, host: str = "127.0.0.1",
                    port: int = IDP_PORT) -> None:
    idp = IdentityProvider(client_id="demo-gateway", client_secret="demo-client-secret", host=host, port=port)
    idp.user = dict(DEMO_USER)
    idp.access_token_ttl = 600
    idp.add_key("RS256")
    await idp.server.run(task_status)

"""Identity headers the gateway vouches for cannot be spoofed, removed or imitated (issue 10, class 3).

A running gateway with real jwt (HS256), oauth2-introspection (the test identity provider's
RFC 7662 endpoint) and key-auth routes, in front of an upstream that records every byte:
the exact header list it receives is checked.
"""

from __future__ import annotations

import json
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trio
from triogate.config import ConfigError
from triogate.testing import raw_request

from .conftest import RawUpstream

SPOOFED = (b"x-consumer-username: admin\r\nx-consumer-custom-id: root\r\nx-consumer-id: 1\r\n"
           b"x-consumer-groups: admins\r\nx-anonymous-consumer: false\r\nx-credential-identifier: admin\r\n"
           b"x-user-id: admin\r\nx-token-subject: admin\r\nX-Consumer-Whatever: 1\r\n")
# what the gateway adds to every forwarded request (host is the target's, then the request id)
SECRET = "identity-test-secret-" + "k" * 32
FORWARDING = [b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"via", b"x-request-id"]


def head_fields(head: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) of every field of a recorded request head, in order."""
    out = []
    for line in head.split(b"\r\n")[1:]:
        if line:
            name, _, value = line.partition(b":")
            out.append((name.strip().lower(), value.strip()))
    return out


def names(head: bytes) -> list[bytes]:
    return [n for n, _ in head_fields(head)]


def field(head: bytes, name: bytes) -> list[bytes]:
    return [v for n, v in head_fields(head) if n == name]


@pytest.fixture
async def idp(identity_provider: Any) -> Any:
    identity_provider.kid = identity_provider.add_key("HS256")
    return identity_provider


def identity_config(up: RawUpstream, idp: Any, **gateway: Any) -> dict[str, Any]:
    return {
        "gateway": gateway,
        "upstreams": {"u": {"targets": [{"url": up.url}]}},
        "consumers": {
            "alice": {"custom_id": "a-1", "credentials": {"key-auth": {"keys": ["alice-key"]}}},
            "guest": {},
        },
        "routes": {
            "jwt": {"paths": ["/jwt"], "upstream": "u", "plugins": {"jwt": {
                "secret": SECRET, "issuer": idp.issuer, "claims_to_headers": {"sub": "x-user-id"}}}},
            "introspect": {"paths": ["/introspect"], "upstream": "u", "plugins": {"oauth2-introspection": {
                "introspection_url": idp.introspection_url, "client_id": idp.client_id,
                "client_secret": idp.client_secret, "forward_headers": {"sub": "x-token-subject"}}}},
            "key": {"paths": ["/key"], "upstream": "u", "plugins": {"key-auth": {"anonymous": "guest"}}},
            "key-quiet": {"paths": ["/key-quiet"], "upstream": "u",
                          "plugins": {"key-auth": {"consumer_headers": False}}},
            "public": {"paths": ["/public"], "upstream": "u"},
        },
    }


async def send(port: int, request: bytes) -> bytes:
    return await raw_request(port, request, timeout=5)


def credential(idp: Any, path: str) -> bytes:
    if path == "/jwt":
        return b"authorization: Bearer " + idp.mint(idp.kid, key=SECRET, sub="user-7").encode() + b"\r\n"
    if path == "/introspect":
        return b"authorization: Bearer " + idp.issue_opaque(sub="user-8").encode() + b"\r\n"
    if path.startswith("/key"):
        return b"apikey: alice-key\r\n"
    return b""


# the header list each route forwards for GET with host + credential + SPOOFED + connection: close
EXPECTED_ASSERTED = {
    "/jwt": [(b"x-user-id", b"user-7")],
    "/introspect": [(b"x-token-subject", b"user-8")],
    "/key": [(b"x-consumer-username", b"alice"), (b"x-consumer-custom-id", b"a-1")],
    "/key-quiet": [],
    "/public": [],
}


@pytest.mark.parametrize("path", list(EXPECTED_ASSERTED))
async def test_spoofed_identity_headers_never_reach_the_upstream(front, secure_gateway, raw_upstream, idp, path):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    raw = await send(gw.port, b"GET " + path.encode() + b" HTTP/1.1\r\nhost: gw\r\n" + credential(idp, path)
                     + SPOOFED + b"accept: */*\r\nconnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert len(up.heads) == 1
    fields = head_fields(up.heads[0])
    asserted = [(n, v) for n, v in fields if n.startswith((b"x-consumer-", b"x-anonymous", b"x-user", b"x-token",
                                                           b"x-credential"))]
    assert asserted == EXPECTED_ASSERTED[path]
    # the exact list: what the client sent end to end (accept), the asserted headers, forwarding fields
    expected = [b"host", b"accept", *(n for n, _ in EXPECTED_ASSERTED[path]), *FORWARDING]
    assert sorted(names(up.heads[0])) == sorted(expected), up.heads[0]


@pytest.mark.parametrize(("path", "named"), [
    ("/key", b"x-consumer-username"),
    ("/key", b"x-consumer-custom-id"),
    ("/jwt", b"x-user-id"),
    ("/introspect", b"x-token-subject"),
])
async def test_connection_cannot_remove_an_asserted_header(front, secure_gateway, raw_upstream, idp, path, named):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    raw = await send(gw.port, b"GET " + path.encode() + b" HTTP/1.1\r\nhost: gw\r\n" + credential(idp, path)
                     + b"connection: close, " + named + b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert len(up.heads) == 1
    asserted = dict(EXPECTED_ASSERTED[path])
    assert field(up.heads[0], named) == [asserted[named]], up.heads[0]


async def test_connection_cannot_remove_the_anonymous_marker(front, secure_gateway, raw_upstream, idp):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    raw = await send(gw.port, b"GET /key HTTP/1.1\r\nhost: gw\r\n"
                     b"connection: x-anonymous-consumer, x-consumer-username, close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert field(up.heads[0], b"x-anonymous-consumer") == [b"true"]
    assert field(up.heads[0], b"x-consumer-username") == [b"guest"]


async def test_connection_named_fields_are_removed_before_plugins_see_them(front, secure_gateway, raw_upstream, idp):
    """A field the client marks hop-by-hop is for the gateway's hop only: it is gone before auth, too."""
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    raw = await send(gw.port, b"GET /key-quiet HTTP/1.1\r\nhost: gw\r\napikey: alice-key\r\nx-keep: 1\r\n"
                     b"x-drop: 1\r\nconnection: apikey, x-drop, close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 401"), raw[:400]
    assert up.heads == []
    raw = await send(gw.port, b"GET /public HTTP/1.1\r\nhost: gw\r\nx-keep: 1\r\nx-drop: 1\r\n"
                     b"connection: x-drop, close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert field(up.heads[0], b"x-keep") == [b"1"]
    assert b"x-drop" not in names(up.heads[0])
    assert b"connection" not in names(up.heads[0])


@pytest.mark.parametrize("path", ["/jwt", "/public"])
async def test_underscore_look_alikes_are_dropped(front, secure_gateway, raw_upstream, idp, path):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    raw = await send(gw.port, b"GET " + path.encode() + b" HTTP/1.1\r\nhost: gw\r\n" + credential(idp, path)
                     + b"X_User_Id: admin\r\nX_Consumer_Username: admin\r\nx_tenant: other\r\n"
                       b"connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert not [n for n in names(up.heads[0]) if b"_" in n], up.heads[0]
    assert field(up.heads[0], b"x-user-id") == ([b"user-7"] if path == "/jwt" else [])


async def test_underscores_allowed_still_drop_identity_look_alikes(front, secure_gateway, raw_upstream, idp):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp, underscores_in_headers="allow"), autoload=True)
    raw = await send(gw.port, b"GET /public HTTP/1.1\r\nhost: gw\r\nX_User_Id: admin\r\nX_Consumer_Username: a\r\n"
                     b"x_anonymous_consumer: true\r\nx_tenant: t1\r\nconnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200"), raw[:400]
    assert [n for n in names(up.heads[0]) if b"_" in n] == [b"x_tenant"]


async def test_underscores_rejected_is_400_never_forwarded(front, secure_gateway, raw_upstream, idp):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp, underscores_in_headers="reject"), autoload=True)
    raw = await send(gw.port, b"GET /public HTTP/1.1\r\nhost: gw\r\nx_tenant: t1\r\nconnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400"), raw[:400]
    assert b"application/problem+json" in raw
    doc = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert doc["request_id"] and "underscore" in doc["detail"]
    assert up.connections == []


@pytest.mark.parametrize("path", ["/jwt", "/introspect", "/public"])
async def test_two_authorization_fields_are_400_never_forwarded(front, secure_gateway, raw_upstream, idp, path):
    up = await raw_upstream()
    gw = await secure_gateway(identity_config(up, idp), autoload=True)
    token = credential(idp, "/jwt")
    raw = await send(gw.port, b"GET " + path.encode() + b" HTTP/1.1\r\nhost: gw\r\n" + token
                     + b"authorization: Bearer other\r\nconnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400"), raw[:400]
    doc = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert doc["request_id"] and "Authorization" in doc["detail"]
    assert up.connections == []
    assert idp.calls["introspect"] == 0


# --------------------------------------------------------------------------- HTTP/2 streams


async def h2_get(port: int, headers: list[tuple[str, str]]) -> tuple[dict[str, str], bytes]:
    """One HTTP/2 (prior knowledge) request with exactly these regular fields."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "gw"), *headers],
                      end_stream=True)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    got: dict[str, str] = {}
    body = b""
    async with stream:
        await stream.send_all(conn.data_to_send())
        with trio.fail_after(5):
            while True:
                data = await stream.receive_some(65536)
                assert data, "connection closed"
                done = False
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.ResponseReceived):
                        got = dict(ev.headers)
                    elif isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        done = True
                out = conn.data_to_send()
                if out:
                    await stream.send_all(out)
                if done:
                    return got, body


async def test_http2_streams_get_the_same_identity_rules(gateway_factory, raw_upstream, idp):
    up = await raw_upstream()
    cfg = identity_config(up, idp)
    cfg["gateway"] = {"listen": [{"address": "127.0.0.1:0", "protocol": "h2"}]}
    gw = await gateway_factory(cfg, autoload=True)
    token = "Bearer " + idp.mint(idp.kid, key=SECRET, sub="user-7")
    got, _ = await h2_get(gw.port, [(":path", "/jwt"), ("authorization", token), ("x-user-id", "admin"),
                                    ("x-consumer-username", "admin"), ("x_user_id", "admin")])
    assert got[":status"] == "200"
    assert field(up.heads[0], b"x-user-id") == [b"user-7"]
    assert b"x-consumer-username" not in names(up.heads[0])
    assert not [n for n in names(up.heads[0]) if b"_" in n]
    got, body = await h2_get(gw.port, [(":path", "/public"), ("authorization", token), ("authorization", "x")])
    assert got[":status"] == "400"
    assert json.loads(body)["request_id"]
    assert len(up.heads) == 1


# --------------------------------------------------------------------------- configuration


def _errors(config: dict[str, Any]) -> list[str]:
    from triogate.config import parse_config
    from triogate.pipeline import Pipeline
    from triogate.plugins import PluginRegistry
    from triogate.upstream import HTTPClient

    with pytest.raises(ConfigError) as info:
        Pipeline(parse_config(config, "gw.toml"), PluginRegistry(autoload=True), HTTPClient())
    return info.value.errors


def _base(**route: Any) -> dict[str, Any]:
    return {"upstreams": {"u": {"targets": [{"url": "http://127.0.0.1:9"}]}},
            "routes": {"r": {"paths": ["/"], "upstream": "u", **route}}}


def test_check_flags_header_names_with_underscores_that_never_match() -> None:
    cfg = _base(headers={"x_tenant": "a"})
    cfg["gateway"] = {"access_log_headers": ["x_trace"]}
    errors = _errors(cfg)  # the core's own keys are checked when the file is parsed
    plugin_errors = _errors(_base(plugins={  # plugin settings when the instances are built
        "key-auth": {"key_names": ["x_api_key"]},
        "jwt": {"secret": "s" * 32, "header_names": ["x_token"]},
        "rate-limit": {"limits": ["5/second"], "key": "header", "key_header": "x_client"},
    }))
    for key in ("routes.r.headers.x_tenant", "gateway.access_log_headers[0]"):
        assert any(e.startswith(key + ":") and "underscores_in_headers" in e for e in errors), (key, errors)
    for key in ("routes.r.plugins.key-auth.key_names[0]", "routes.r.plugins.jwt.header_names[0]",
                "routes.r.plugins.rate-limit.key_header"):
        assert any(e.startswith(key + ":") and "underscores_in_headers" in e for e in plugin_errors), (key, errors)


def test_key_names_with_underscores_are_fine_as_query_parameters() -> None:
    from triogate.config import parse_config
    from triogate.pipeline import Pipeline
    from triogate.plugins import PluginRegistry
    from triogate.upstream import HTTPClient

    cfg = _base(plugins={"key-auth": {"key_names": ["api_key"], "key_in_query": True}})
    Pipeline(parse_config(cfg, "gw.toml"), PluginRegistry(autoload=True), HTTPClient())


def test_underscores_allowed_makes_those_names_valid() -> None:
    from triogate.config import parse_config
    from triogate.pipeline import Pipeline
    from triogate.plugins import PluginRegistry
    from triogate.upstream import HTTPClient

    cfg = _base(headers={"x_tenant": "a"}, plugins={"key-auth": {"key_names": ["x_api_key"]}})
    cfg["gateway"] = {"underscores_in_headers": "allow", "access_log_headers": ["x_trace"]}
    Pipeline(parse_config(cfg, "gw.toml"), PluginRegistry(autoload=True), HTTPClient())


def test_a_plugin_cannot_declare_a_header_clients_send_as_identity() -> None:
    errors = _errors(_base(plugins={"jwt": {"secret": "s" * 32, "claims_to_headers": {"sub": "Authorization"}}}))
    assert any(e.startswith("routes.r.plugins.jwt:") and "'authorization'" in e for e in errors), errors

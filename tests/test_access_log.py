"""The access log end to end: one JSON line per request with the documented fields, accurate
byte counts (chunked bodies too), no secrets, reopened on reload (log rotation)."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

import trio
import triogate
from triogate.testing import UpstreamServer, raw_request


async def lines_of(path: Path, n: int) -> list[dict]:
    """The first ``n`` lines, once written (the log is written after the response is sent)."""
    with trio.fail_after(5):
        while True:
            text = path.read_text() if path.exists() else ""
            if text.count("\n") >= n:
                return [json.loads(line) for line in text.splitlines()]
            await trio.sleep(0.01)


def config(upstream: UpstreamServer, log: Path) -> dict:
    return {
        "gateway": {"access_log": str(log)},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "u", "strip_prefix": "/api"}},
    }


async def test_one_json_line_per_request_with_every_field(upstream: UpstreamServer, gateway_factory,
                                                         tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(upstream, log))
    before = time.time()
    r = await gw.client.post("/api/items?page=2", body=b"x" * 1234)
    missing = await gw.client.get("/nowhere")
    (ok, notfound) = await lines_of(log, 2)
    assert r.status == 200 and missing.status == 404
    assert ok["request_id"] == r.headers["x-request-id"]
    assert (ok["method"], ok["path"], ok["query"], ok["status"], ok["route"]) == ("POST", "/api/items", "page=2",
                                                                                  200, "api")
    assert ok["bytes_in"] == 1234
    assert ok["bytes_out"] > len(r.content)  # the response as sent: head and body
    assert (ok["upstream"], ok["target"]) == ("u", upstream.url)
    assert 0 < ok["upstream_ms"] <= ok["duration_ms"]
    logged_at = calendar.timegm(time.strptime(ok["time"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 1 <= logged_at <= time.time() + 1
    assert ok["client_ip"] == "127.0.0.1"
    assert notfound["request_id"] == missing.headers["x-request-id"]
    assert (notfound["status"], notfound["route"], notfound["bytes_in"]) == (404, None, 0)
    assert "target" not in notfound and "upstream_ms" not in notfound


async def test_bytes_in_counts_a_chunked_body(upstream: UpstreamServer, gateway_factory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(upstream, log))
    chunks = [b"a" * 100, b"b" * 3000, b"c" * 7]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    reply = await raw_request(gw.port, b"POST /api/upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                                       b"connection: close\r\n\r\n" + wire)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert upstream.requests[0].body.data == b"".join(chunks)
    (line,) = await lines_of(log, 1)
    assert line["bytes_in"] == 3107


async def test_secrets_never_reach_the_log(upstream: UpstreamServer, gateway_factory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(upstream, log))
    secrets = ["S3CR3T-query-key", "S3CR3T-token", "S3CR3T-bearer", "S3CR3T-cookie", "S3CR3T-apikey", "S3CR3T-pw"]
    r = await gw.client.get(
        f"/api/x?api_key={secrets[0]}&access_token={secrets[1]}&page=2&password={secrets[5]}",
        headers={"authorization": f"Bearer {secrets[2]}", "cookie": f"session={secrets[3]}",
                 "x-api-key": secrets[4]})
    assert r.status == 200
    (line,) = await lines_of(log, 1)
    text = log.read_text()
    for secret in secrets:
        assert secret not in text
    assert line["query"] == "api_key=REDACTED&access_token=REDACTED&page=2&password=REDACTED"
    assert "headers" not in line  # no header is logged unless asked for


async def test_log_file_is_reopened_on_reload(upstream: UpstreamServer, gateway_factory, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(upstream, log))
    await gw.client.get("/api/one")
    await lines_of(log, 1)
    log.rename(tmp_path / "access.log.1")  # what logrotate does before it signals the gateway
    assert await gw.reload(config(upstream, log)) == []
    await gw.client.get("/api/two")
    (line,) = await lines_of(log, 1)
    assert line["path"] == "/api/two"
    assert [json.loads(x)["path"] for x in (tmp_path / "access.log.1").read_text().splitlines()] == ["/api/one"]


async def test_short_circuit_is_logged_with_the_plugin(upstream: UpstreamServer, gateway_factory,
                                                       tmp_path: Path) -> None:
    class Deny(triogate.Plugin):
        @triogate.hookimpl
        async def auth(self, ctx: triogate.Context) -> triogate.Response:
            return ctx.problem(403, "not on the list")

    log = tmp_path / "access.log"
    cfg = config(upstream, log)
    cfg["routes"]["api"]["plugins"] = {"deny": {}}
    gw = await gateway_factory(cfg, plugins={"deny": Deny})
    r = await gw.client.post("/api/x", body=b"unread")
    assert r.status == 403
    (line,) = await lines_of(log, 1)
    assert line["short_circuit"] == {"plugin": "deny", "phase": "auth", "status": 403, "reason": "not on the list"}
    assert "target" not in line
    assert upstream.requests == []

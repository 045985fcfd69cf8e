"""The access-log writer: lines built as one string must be exactly the JSON of the reference dict
(escaping of quotes, backslashes, control characters and non-ASCII included, checked with
json.loads), and buffering must lose nothing on a graceful stop, a reload or with workers sharing
stdout; a failing destination is logged once and the gateway keeps serving."""

from __future__ import annotations

import json
import logging
import os
import signal
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import trio
import triogate
from triogate.testing import GatewayClient, GatewayProcess, UpstreamServer, free_port, raw_request

TRICKY = 'quote " backslash \\ tab \t newline \n nul \x00 bell \x07 del \x7f é € 😀 \u2028 \ud800'


class Odd:
    def __str__(self) -> str:
        return 'odd "object"'


class Extras(triogate.Plugin):
    """Puts awkward values in log_extra (per x-case) and keeps every context for the test to compare."""

    seen: ClassVar[list[triogate.Context]] = []

    @triogate.hookimpl
    async def auth(self, ctx: triogate.Context) -> triogate.Response | None:
        case = ctx.request.headers.get("x-case") or ""
        if case == "tricky":
            ctx.log_extra["note"] = TRICKY
            ctx.log_extra[TRICKY] = "a key that needs escaping"
            ctx.log_extra["nested"] = {"list": [1, 2.5, None, True, TRICKY], "api_key": "hidden"}
            ctx.log_extra["ratio"] = 0.1
            ctx.log_extra["big"] = 10**20
            ctx.log_extra["obj"] = Odd()
            ctx.principal = triogate.Principal(consumer=f"c-{TRICKY}")
        elif case == "override":
            ctx.log_extra["route"] = "overridden"  # replaces the field in place, as dict.update did
            ctx.log_extra[7] = "an int key"
        elif case == "odd":
            ctx.client_ip = None  # type: ignore[assignment]  # a field of an unexpected type: the general path
        Extras.seen.append(ctx)
        if case == "answer-problem":  # short-circuit: the reason is the problem's detail
            return ctx.problem(403, TRICKY)
        if case == "answer-reason":  # short-circuit: the reason is the plugin's log_extra["reason"]
            ctx.log_extra["reason"] = TRICKY
            return triogate.Response(200, [("content-type", "text/plain")], b"ok")
        if case == "answer-bare":  # short-circuit without a reason
            return triogate.Response(204, [], b"")
        return None


def config(upstream: UpstreamServer, log: Path | str, **gateway: Any) -> dict:
    return {
        "gateway": {"access_log": str(log), "access_log_headers": ["user-agent", "x-note", "authorization"],
                    **gateway},
        "upstreams": {"u": {"targets": [{"url": upstream.url}]}},
        "routes": {"api": {"paths": ["/api"], "upstream": "u", "plugins": {"extras": {}}}},
    }


async def read_lines(path: Path, count: int) -> list[str]:
    with trio.fail_after(5):
        while True:
            got = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            if len(got) >= count:
                return got
            await trio.sleep(0.02)


async def test_json_lines_match_the_reference_encoding(gateway_factory, upstream, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    Extras.seen = []
    # an encoded backslash is refused by default (gateway.paths); kept here, it is a path to escape
    gw = await gateway_factory(config(upstream, log, paths={"encoded_slash": "keep"}), plugins={"extras": Extras})
    paths = ["/api/plain", "/api/a%22b%5Cc%09d%01e%7Ff", "/api/caf%C3%A9/%E2%82%AC/%F0%9F%98%80",
             "/api/q?x=%22%5C&note=caf%C3%A9&token=secret%22"]
    for path in paths:
        r = await gw.client.get(path, headers=[("x-case", "tricky"), ("x-note", 'say "hi" \\ there'),
                                               ("authorization", "Bearer t0ken")])
        assert r.status == 200
    assert (await gw.client.get("/api/odd", headers=[("x-case", "odd")])).status == 200
    for case, status in (("answer-problem", 403), ("answer-reason", 200), ("answer-bare", 204)):
        assert (await gw.client.get(f"/api/{case}", headers=[("x-case", case)])).status == status
    # raw bytes: a non-ASCII (obs-text) header value, as a client may send it
    reply = await raw_request(gw.port, b"GET /api/raw HTTP/1.1\r\nhost: x\r\nx-case: override\r\n"
                                       b"user-agent: caf\xc3\xa9 \"ua\" \\\r\nconnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ")
    got = await read_lines(log, len(paths) + 5)
    assert len(Extras.seen) == len(got)
    access_log = gw.gateway.access_log
    for line, ctx in zip(got, Extras.seen, strict=True):
        assert line.isascii(), line  # non-ASCII is \u-escaped, as json.dumps does by default
        parsed = json.loads(line)
        reference = json.loads(json.dumps(access_log.record(ctx), separators=(",", ":"), default=str))
        for timing in ("time", "duration_ms"):  # the only fields that differ a moment later
            assert parsed.pop(timing) is not None
            reference.pop(timing)
        assert list(parsed.items()) == list(reference.items())  # same keys, same order, same values
        assert parsed["path"] == ctx.request.path and parsed["request_id"] == ctx.request_id
    tricky = json.loads(got[1])
    assert tricky["note"] == TRICKY and tricky["consumer"] == f"c-{TRICKY}"
    assert tricky["headers"] == {"x-note": 'say "hi" \\ there', "authorization": "Bearer REDACTED"}
    assert tricky["nested"] == {"list": [1, 2.5, None, True, TRICKY], "api_key": "REDACTED"}
    assert (tricky["ratio"], tricky["big"], tricky["obj"]) == (0.1, 10**20, 'odd "object"')
    assert tricky[TRICKY] == "a key that needs escaping"
    assert "secret" not in got[3] and json.loads(got[3])["query"] == "x=%22%5C&note=caf%C3%A9&token=REDACTED"
    assert json.loads(got[-5])["client_ip"] is None
    problem, reason, bare = (json.loads(x)["short_circuit"] for x in got[-4:-1])
    assert problem == {"plugin": "extras", "phase": "auth", "status": 403, "reason": TRICKY}
    assert reason == {"plugin": "extras", "phase": "auth", "status": 200, "reason": TRICKY}
    assert bare == {"plugin": "extras", "phase": "auth", "status": 204}
    raw = json.loads(got[-1])
    assert raw["route"] == "overridden" and list(raw).index("route") == 9 and raw["7"] == "an int key"
    assert raw["path"] == "/api/raw"


async def test_lines_before_a_graceful_stop_are_written(gateway_factory, upstream, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    gw = await gateway_factory(config(upstream, log), plugins={"extras": Extras})
    ids = set()
    for i in range(50):
        r = await gw.client.get(f"/api/{i}")
        ids.add(r.headers["x-request-id"])
    await gw.stop()  # no waiting for the flush interval: stopping flushes
    logged = [json.loads(x) for x in log.read_text().splitlines()]
    assert {x["request_id"] for x in logged} == ids and len(logged) == 50


async def test_reload_writes_buffered_lines_to_the_old_file(gateway_factory, upstream, tmp_path: Path) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    gw = await gateway_factory(config(upstream, first), plugins={"extras": Extras})
    await gw.client.get("/api/one")
    assert await gw.reload(config(upstream, second)) == []  # straight away: the line may still be buffered
    await gw.client.get("/api/two")
    assert [json.loads(x)["path"] for x in first.read_text().splitlines()] == ["/api/one"]
    assert [json.loads(x)["path"] for x in await read_lines(second, 1)] == ["/api/two"]


async def test_a_failing_destination_is_logged_once_and_the_gateway_serves(gateway_factory, upstream, caplog,
                                                                          tmp_path: Path) -> None:
    caplog.set_level(logging.ERROR, logger="triogate")
    gw = await gateway_factory(config(upstream, "/dev/full"), plugins={"extras": Extras})  # every write: ENOSPC

    def failures() -> int:
        return sum("access log /dev/full: write failed" in r.getMessage() for r in caplog.records)

    assert (await gw.client.get("/api/1")).status == 200
    with trio.fail_after(5):
        while not failures():  # the flush task writes within the interval
            await trio.sleep(0.02)
    for i in range(3):
        assert (await gw.client.get(f"/api/more/{i}")).status == 200
        gw.gateway.access_log.flush()  # fails again, quietly
    assert failures() == 1


def _process_config(upstream: UpstreamServer, port: int, log: str, workers: int) -> str:
    return textwrap.dedent(f"""
        [gateway]
        listen = ["127.0.0.1:{port}"]
        workers = {workers}
        access_log = "{log}"
        log_level = "warning"
        [upstreams.u]
        targets = [{{ url = "{upstream.url}" }}]
        [routes.api]
        paths = ["/api"]
        upstream = "u"
    """)


async def _load(port: int, clients: int, each: int) -> set[str]:
    """``clients`` keep-alive connections sending ``each`` requests; the request ids answered."""
    ids: set[str] = set()

    async def one(n: int) -> None:
        client = GatewayClient(f"http://127.0.0.1:{port}")
        try:
            for i in range(each):
                r = await client.get(f"/api/{n}/{i}")
                assert r.status == 200
                ids.add(r.headers["x-request-id"])
        finally:
            await client.aclose()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            for n in range(clients):
                nursery.start_soon(one, n)
    return ids


def _env() -> dict[str, str]:
    return {**os.environ, "TRIOGATE_DISABLE_PLUGIN_AUTOLOAD": "1"}


async def test_sigterm_right_after_requests_loses_no_line(upstream, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    port = free_port()
    async with GatewayProcess(_process_config(upstream, port, str(log), 1), env=_env()) as proc:
        ids = await _load(port, 8, 40)
        assert await proc.stop() == 0  # SIGTERM at once, well within one flush interval
    logged = [json.loads(x)["request_id"] for x in log.read_text().splitlines()]
    assert len(logged) == len(ids) == 320 and set(logged) == ids


async def test_two_workers_on_stdout_write_whole_lines(upstream, tmp_path: Path) -> None:
    port = free_port()
    async with GatewayProcess(_process_config(upstream, port, "-", 2), env=_env()) as proc:
        ids: set[str] = set()
        for _ in range(4):  # new connections, so both workers take some
            ids |= await _load(port, 8, 25)
        proc.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
        output = proc.output()
    lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]  # a torn line would not parse
    assert len(lines) == len(ids) == 800 and {x["request_id"] for x in lines} == ids

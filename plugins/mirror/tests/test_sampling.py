"""percentage: 0 mirrors nothing, 100 everything; deterministic sampling follows the request id."""

from typing import Any

import pytest

MakeGateway = Any


async def test_zero_percent_mirrors_nothing(make_gateway: MakeGateway) -> None:
    s = await make_gateway({"percentage": 0})
    for i in range(5):
        assert (await s.gw.client.get(f"/api/{i}")).status == 200
    st = s.plugin.stats
    assert (st.mirrored, st.failed, st.dropped, st.skipped, st.in_flight) == (0, 0, 0, 0, 0)
    await s.until(lambda: len(s.logged) == 5)
    assert [e["mirrored"] for e in s.logged] == [False] * 5
    assert s.shadow.requests == []


async def test_hundred_percent_mirrors_everything(make_gateway: MakeGateway) -> None:
    s = await make_gateway({"percentage": 100})
    for i in range(5):
        assert (await s.gw.client.get(f"/api/{i}")).status == 200
    await s.until(lambda: s.plugin.stats.mirrored == 5)
    assert sorted(r.path for r in s.shadow.requests) == [f"/{i}" for i in range(5)]
    await s.until(lambda: len(s.logged) == 5)
    assert [e["mirrored"] for e in s.logged] == [True] * 5


async def test_log_extra_names_why_a_sampled_request_was_not_mirrored(make_gateway: MakeGateway) -> None:
    s = await make_gateway({"max_body_bytes": 1})
    assert (await s.gw.client.post("/api/x", body=b"too long")).status == 200
    await s.until(lambda: len(s.logged) == 1)
    assert s.logged[0]["mirrored"] is False and s.logged[0]["mirror_skip"] == "body_too_large"


@pytest.mark.parametrize("percentage", [30, 70])
async def test_deterministic_sampling_by_request_id(make_gateway: MakeGateway, percentage: int) -> None:
    s = await make_gateway({"percentage": percentage, "deterministic": True})
    ids = [f"req-{i:04d}-abcdef" for i in range(40)]
    for _round in range(2):
        for rid in ids:
            assert (await s.gw.client.get("/api/x", headers={"x-request-id": rid})).status == 200
    await s.until(lambda: s.plugin.stats.in_flight == 0 and len(s.logged) == 80)
    first = [e["mirrored"] for e in s.logged[:40]]
    assert first == [e["mirrored"] for e in s.logged[40:]]  # the same request id, the same decision
    assert True in first and False in first
    mirrored = sorted(r.headers.get("x-request-id") for r in s.shadow.requests)
    assert mirrored == sorted([rid for rid, m in zip(ids, first) if m] * 2)
    assert s.plugin.stats.mirrored == len(mirrored)

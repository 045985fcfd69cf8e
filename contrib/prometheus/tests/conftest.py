"""Helpers shared by the prometheus plugin's tests."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from triogate import HTTPClient

TOKEN = "metrics-admin-token-0123"


async def scrape(gw, token: str = TOKEN, path: str = "/metrics") -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted label items): value}`` from the admin listener."""
    client = HTTPClient(read_timeout=10.0)
    try:
        r = await client.fetch("GET", gw.gateway.admin.url + path,
                               headers=[("authorization", f"Bearer {token}")], timeout=10.0)
    finally:
        await client.aclose()
    assert r.status == 200, r.content
    assert r.headers.get("content-type").startswith("text/plain; version=0.0.4")
    return parse(r.content.decode())


def parse(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Scraper:
    """``await metrics.scrape(gw)`` then ``metrics.value(samples, name, **labels)``."""

    scrape = staticmethod(scrape)
    value = staticmethod(value)
    parse = staticmethod(parse)


@pytest.fixture
def metrics() -> Scraper:
    return Scraper()


@pytest.fixture
def admin():
    return {"listen": "127.0.0.1:0", "token": TOKEN}

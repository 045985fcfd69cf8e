"""The router's first-segment index picks exactly the route the full scan in match order picks.

Random route tables (prefix, exact, parameters, ``/*``, catch-alls, case-insensitive routes, hosts,
methods) and random paths, seeded so a failure repeats; each path is matched through the index and
through :meth:`Router.scan` over the whole table.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from triogate.routing import Route, Router

SEGMENTS = ["api", "users", "u", "user", "orders", "v1", "v2", "API", "static", "x"]


def random_pattern(rng: random.Random) -> str:
    parts = [rng.choice(SEGMENTS) for _ in range(rng.randint(0, 3))]
    if parts and rng.random() < 0.3:
        parts[rng.randrange(len(parts))] = "{id}"
    if parts and rng.random() < 0.1:
        parts[-1] = parts[-1] + "{suffix}"  # a parameter inside a segment: its first segment is not fixed
    path = "/" + "/".join(parts)
    if rng.random() < 0.15 and "{" not in path:
        path = path.rstrip("/") + "/*"
    elif rng.random() < 0.15 and path != "/":
        path += "/"
    return path


def random_route(rng: random.Random, i: int) -> Route:
    config = SimpleNamespace(
        paths=[random_pattern(rng) for _ in range(rng.randint(1, 2))],
        path_match="exact" if rng.random() < 0.25 else "prefix",
        case_insensitive=rng.random() < 0.1,
        allow_matrix_params=False,
        hosts=["api.example.com"] if rng.random() < 0.15 else [],
        methods=["POST"] if rng.random() < 0.15 else [],
        headers={},
        upgrades=[],
        upstream="u",
    )
    return Route(f"r{i}", config)


def random_path(rng: random.Random) -> str:
    parts = [rng.choice([*SEGMENTS, "42", "users42", "Users", ""]) for _ in range(rng.randint(0, 4))]
    return "/" + "/".join(parts)


@pytest.mark.parametrize("seed", range(40))
def test_the_index_agrees_with_the_full_scan(seed: int) -> None:
    rng = random.Random(seed)
    router = Router([random_route(rng, i) for i in range(rng.randint(1, 25))])
    for _ in range(300):
        path = random_path(rng)
        method = rng.choice(["GET", "POST", "DELETE"])
        host = rng.choice(["api.example.com", "other"])
        expected = router.scan(router.entries, method, host, path, {})
        got = router.match(method, host, path, {})
        assert (got[0], got[1], got[2]) == expected, (path, [r.config.paths for r in router.routes])


def test_a_path_scans_only_its_segment_and_the_routes_without_one() -> None:
    def route(name: str, path: str, **kw: object) -> Route:
        config = SimpleNamespace(paths=[path], path_match="prefix", case_insensitive=False, allow_matrix_params=False,
                                 hosts=[], methods=[], headers={}, upgrades=[], upstream="u")
        config.__dict__.update(kw)
        return Route(name, config)

    router = Router([route(f"r{i}", f"/svc{i}") for i in range(200)]
                    + [route("users", "/users/{id}"), route("ci", "/Docs", case_insensitive=True), route("all", "/")])
    names = [e[4].name for e in router._by_segment["/svc7"]]
    assert names == ["r7", "ci", "all"]  # 3 candidates instead of 203, in match order
    assert [e[4].name for e in router._by_segment["/users"]] == ["users", "ci", "all"]
    assert router.match("GET", "h", "/svc7/x", {})[0].name == "r7"
    assert router.match("GET", "h", "/users/42", {})[0].name == "users"
    assert router.match("GET", "h", "/docs/a", {})[0].name == "ci"
    assert router.match("GET", "h", "/nothing", {})[0].name == "all"

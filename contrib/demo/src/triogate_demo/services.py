"""users, orders and payments: tiny in-memory JSON services on fixed loopback ports.

Two more users instances show traffic management (docs/traffic.md): ``users-v2``, the canary, answers
like users with one more field (``handle``), and ``users-shadow``, the mirror's shadow, also lists the
last requests it received at ``GET /_received`` (the copies the gateway sent it)."""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import parse_qs

import trio
from triogate import Request, Response
from triogate.devserver import UpstreamServer

USERS = {
    "1": {"id": "1", "name": "Ada Lovelace", "email": "ada@example.com"},
    "2": {"id": "2", "name": "Grace Hopper", "email": "grace@example.com"},
    "3": {"id": "3", "name": "Alan Turing", "email": "alan@example.com"},
}
ORDERS = [
    {"id": "o-100", "user": "1", "item": "analytical engine", "total": 1843.0},
    {"id": "o-101", "user": "1", "item": "punch cards", "total": 12.5},
    {"id": "o-102", "user": "2", "item": "compiler", "total": 1952.0},
]
PAYMENTS = [
    {"id": "p-900", "user": "1", "order": "o-100", "status": "settled"},
    {"id": "p-901", "user": "2", "order": "o-102", "status": "pending"},
]

# (service, instance name, port)
SERVICES: list[tuple[str, str, int]] = [
    ("users", "users-1", 9101),
    ("users", "users-2", 9102),
    ("orders", "orders-1", 9201),
    ("payments", "payments-1", 9301),
    ("users-v2", "users-v2", 9103),
    ("users-shadow", "users-shadow", 9104),
]
# what a v2 user adds to v1's fields
HANDLES = {"1": "ada", "2": "grace", "3": "alan"}
RECEIVED_KEPT = 20  # requests the shadow remembers for GET /_received


def _json(data: Any, served_by: str, status: int = 200) -> Response:
    return Response.json(data, status, headers=[("x-served-by", served_by)])


def _v2(user: dict[str, str]) -> dict[str, str]:
    return {**user, "handle": HANDLES[user["id"]]}


def make_handler(service: str, instance: str) -> Any:
    # the shadow's memory: newest last, bounded; each handler (instance) has its own
    received: deque[dict[str, Any]] = deque(maxlen=RECEIVED_KEPT)

    async def handler(req: Request) -> Response:
        q = parse_qs(req.query)
        parts = [p for p in req.path.split("/") if p]
        if service == "users-shadow":
            if parts == ["_received"]:
                return _json(list(reversed(received)), instance)  # newest first
            received.append({"method": req.method, "path": req.path, "query": req.query,
                             "x-mirrored-by": req.headers.get("x-mirrored-by"),
                             "x-request-id": req.headers.get("x-request-id")})
        if req.method not in ("GET", "HEAD"):
            return _json({"error": "read-only demo"}, instance, 405)
        if parts == ["health"]:
            return _json({"status": "ok"}, instance)
        if parts == ["whoami"]:  # who the gateway says the caller is (the /web login route's headers)
            return _json({h: req.headers.get(h) for h in ("x-user-id", "x-user-name", "x-user-email",
                                                         "x-consumer-username")}, instance)
        if service in ("users", "users-v2", "users-shadow"):
            version = _v2 if service == "users-v2" else dict
            if parts == ["users"]:
                return _json([version(u) for u in USERS.values()], instance)
            if len(parts) == 2 and parts[0] == "users":
                user = USERS.get(parts[1])
                return _json(version(user), instance) if user else _json({"error": "no such user"}, instance, 404)
        if service == "orders":
            if parts == ["orders"]:
                user = q.get("user", [None])[0]
                return _json([o for o in ORDERS if user is None or o["user"] == user], instance)
            if len(parts) == 2 and parts[0] == "orders":
                order = next((o for o in ORDERS if o["id"] == parts[1]), None)
                return _json(order, instance) if order else _json({"error": "no such order"}, instance, 404)
        if service == "payments" and parts == ["payments"]:
            user = q.get("user", [None])[0]
            return _json([p for p in PAYMENTS if user is None or p["user"] == user], instance)
        return _json({"error": "not found", "path": req.path}, instance, 404)

    return handler


async def serve_all(task_status: Any = trio.TASK_STATUS_IGNORED, host: str = "127.0.0.1",
                    services: list[tuple[str, str, int]] | None = None) -> None:
    async with trio.open_nursery() as nursery:
        for service, instance, port in (SERVICES if services is None else services):
            await nursery.start(UpstreamServer(make_handler(service, instance), host=host, port=port,
                                               name=instance).run)
        task_status.started()

"""Admission header policy, as a unit: what the pipeline applies before any plugin."""

from __future__ import annotations

from triogate.admission import Admission
from triogate.headers import Headers


def admit(raw: list[tuple[bytes, bytes]], declared: tuple[str, ...] = ("X-User-Id",), mode: str = "drop"
          ) -> tuple[str | None, list[tuple[bytes, bytes]]]:
    headers = Headers.from_raw(list(raw))
    return Admission(declared, mode).admit(headers), headers.raw


def test_plain_requests_are_left_alone() -> None:
    raw = [(b"host", b"h"), (b"connection", b"Keep-Alive"), (b"authorization", b"Bearer x"), (b"accept", b"*/*")]
    assert admit(raw) == (None, raw)


def test_connection_named_fields_go_and_connection_keeps_only_what_the_core_needs() -> None:
    verdict, out = admit([(b"host", b"h"), (b"connection", b"keep-alive, X-Consumer-Username, x-a, Upgrade, host"),
                          (b"upgrade", b"websocket"), (b"x-a", b"1"), (b"x-b", b"2")])
    assert verdict is None
    assert out == [(b"host", b"h"), (b"upgrade", b"websocket"), (b"x-b", b"2"),
                   (b"connection", b"upgrade, keep-alive")]


def test_identity_headers_declared_core_prefix_and_look_alikes() -> None:
    raw = [(b"x-user-id", b"a"), (b"x-consumer-anything", b"a"), (b"x-anonymous-consumer", b"a"),
           (b"x-credential-identifier", b"a"), (b"http2-settings", b"a"), (b"x-keep", b"1")]
    assert admit(raw) == (None, [(b"x-keep", b"1")])
    verdict, out = admit([(b"x_user_id", b"a"), (b"X_consumer_username".lower(), b"a"), (b"x_tenant", b"t")],
                         mode="allow")
    assert (verdict, out) == (None, [(b"x_tenant", b"t")])
    assert admit([(b"x_tenant", b"t")]) == (None, [])
    assert admit([(b"x_tenant", b"t")], mode="reject")[0] == "header field name with an underscore: 'x_tenant'"


def test_two_authorization_fields_are_refused() -> None:
    assert admit([(b"authorization", b"a"), (b"authorization", b"b")])[0] == "more than one Authorization header"


def test_the_name_cache_is_bounded() -> None:
    adm = Admission((), "drop")
    for i in range(10000):
        adm.admit(Headers.from_raw([(b"x-h%d" % i, b"v")]))
    assert len(adm._kinds) <= 4096
    headers = Headers.from_raw([(b"x-h9999", b"v"), (b"x_h", b"v")])
    assert adm.admit(headers) is None and headers.raw == [(b"x-h9999", b"v")]

"""HeaderRules: order, missing values, injection, gateway-managed names."""

from __future__ import annotations

import pytest
from triogate import Headers
from triogate.template import Missing, Ref
from triogate_transform_rules import MANAGED_HEADERS, check_header_name, compile_headers, is_token

VALUES = {"principal.sub": "u1", "query.evil": "a\r\nX-Admin: yes", "query.snow": "☃"}


def resolve(ref: Ref) -> str:
    if ref.text in VALUES:
        return VALUES[ref.text]
    raise Missing(ref)


def test_rule_order() -> None:
    rules = compile_headers(
        remove=["X-Drop"], rename={"x-old": "X-New"},
        replace={"x-r": "{principal.sub}", "x-absent": "v", "x-bad": "{query.evil}"},
        add={"x-user": "sub={principal.sub}", "x-r": "never", "x-none": "{query.nope}"},
        append={"x-multi": "{principal.sub}", "x-skip": "{query.snow}"},
    )
    assert [r.text for r in rules.refs] == ["principal.sub", "query.evil", "principal.sub", "query.nope",
                                            "principal.sub", "query.snow"]
    h = Headers([(b"x-drop", b"1"), (b"x-old", b"a"), (b"x-old", b"b"), (b"x-new", b"gone"), (b"x-r", b"old"),
                 (b"x-bad", b"old"), (b"x-multi", b"0")])
    rules.apply(h, resolve)
    assert h.get_all("x-new") == ["a", "b"]
    assert "x-drop" not in h and "x-old" not in h and "x-absent" not in h and "x-none" not in h
    assert h.get("x-r") == "u1"
    assert "x-bad" not in h  # a replacement that cannot be made removes the old value
    assert h.get("x-user") == "sub=u1"
    assert h.get_all("x-multi") == ["0", "u1"]
    assert "x-skip" not in h


def test_names() -> None:
    assert is_token("X-A_b.c~") and not is_token("a b") and not is_token("")
    assert check_header_name("X-User", "k") == "x-user"
    assert "content-length" in MANAGED_HEADERS
    with pytest.raises(ValueError, match=r"^add.headers: invalid header name 'bad name'$"):
        compile_headers([], {}, {}, {"bad name": "1"}, {})
    for op in ("remove", "rename", "replace", "add", "append"):
        args: dict = {"remove": [], "rename": {}, "replace": {}, "add": {}, "append": {}}
        args[op] = ["Host"] if op == "remove" else {"Transfer-Encoding": "x"}
        with pytest.raises(ValueError, match=rf"^{op}.headers: '(Host|Transfer-Encoding)' is managed by the gateway"):
            compile_headers(**args)


def test_literal_values_are_checked_at_config_load() -> None:
    with pytest.raises(ValueError, match=r"^add.resp.x-a: 'a\\nb' is not a valid header value"):
        compile_headers([], {}, {}, {"x-a": "a\nb"}, {}, "resp")
    assert not compile_headers([], {}, {}, {}, {})

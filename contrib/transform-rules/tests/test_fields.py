"""FieldRules and the dotted field path helpers."""

from __future__ import annotations

import pytest
from triogate.template import Missing, Ref
from triogate_transform_rules import NOTHING, compile_fields, get_field, pop_field, set_field, split_path


def resolve(ref: Ref) -> str:
    if ref.text == "principal.sub":
        return "u1"
    raise Missing(ref)


def test_path_helpers() -> None:
    doc = {"a": {"b": 1, "n": None}, "x": [1]}
    assert split_path("a.b", "k") == ("a", "b")
    assert get_field(doc, ("a", "b")) == 1
    assert get_field(doc, ("a", "n")) is None
    assert get_field(doc, ("a", "z")) is NOTHING
    assert get_field(doc, ("x", "0")) is NOTHING  # paths go through objects only
    set_field(doc, ("x", "y", "z"), 2)  # a non-object on the way is replaced
    assert doc["x"] == {"y": {"z": 2}}
    assert pop_field(doc, ("a", "b")) == 1 and doc["a"] == {"n": None}
    assert pop_field(doc, ("a", "b")) is NOTHING
    assert pop_field(doc, ("q",)) is NOTHING
    assert repr(NOTHING) == "NOTHING"


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", " a", "a .b"])
def test_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError, match=r"k: expected a \(dotted\) field name"):
        split_path(bad, "k")


def test_rule_order_and_missing_values() -> None:
    rules = compile_fields(
        remove=["secret", "deep.pw"],
        rename={"name": "profile.name", "nope": "x"},
        replace={"owner": "{principal.sub}", "gone": "{query.none}", "absent": "x"},
        add={"by": {"sub": "{principal.sub}", "tags": ["t", "{principal.sub}"], "n": 1}, "owner": "never",
             "skip": "{query.none}", "lit": "a {{b}}"},
    )
    assert bool(rules)
    assert [r.text for r in rules.refs] == ["principal.sub", "query.none", "principal.sub", "principal.sub",
                                            "query.none"]
    doc = {"secret": 1, "deep": {"pw": 2, "k": 3}, "name": "n", "owner": "o", "gone": "old"}
    assert rules.apply(doc, resolve) is doc
    assert doc == {"deep": {"k": 3}, "profile": {"name": "n"}, "owner": "u1",
                   "by": {"sub": "u1", "tags": ["t", "u1"], "n": 1}, "lit": "a {b}"}


def test_arrays_apply_to_each_object() -> None:
    rules = compile_fields(["a"], {}, {}, {}, "body")
    assert rules.apply([{"a": 1, "b": 2}, 3, {"a": 4}], resolve) == [{"b": 2}, 3, {}]
    assert rules.apply("text", resolve) == "text"
    assert not compile_fields([], {}, {}, {})


def test_errors_name_the_rule() -> None:
    with pytest.raises(ValueError, match=r"^remove.body: expected a \(dotted\) field name, got 'a..b'$"):
        compile_fields(["a..b"], {}, {}, {})
    with pytest.raises(ValueError, match=r"^add.body.a: unclosed \{"):
        compile_fields([], {}, {}, {"a": {"b": "{principal.sub"}})
    with pytest.raises(ValueError, match=r"^replace.resp.x: \{query.a.b\}: expected"):
        compile_fields([], {}, {"x": "{query.a.b}"}, {}, "resp")

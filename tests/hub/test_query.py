"""Tests for maeul.hub.query: the NGSI-LD q-language, its evaluation, and scopeQ."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maeul.hub.query import (
    AttrPath,
    QAnd,
    QList,
    QNode,
    QOr,
    QRange,
    QRegex,
    QScalar,
    QTerm,
    QueryError,
    attrs_in,
    compile_q,
    parse_q,
    parse_scope_q,
)

NS = "https://ex.org/"


def expand(term: str) -> str:
    return term if "://" in term else NS + term


def ent(attrs: dict[str, list[dict[str, Any]]], **top: Any) -> dict[str, Any]:
    return {
        "id": "urn:ngsi-ld:T:1",
        "type": [NS + "T"],
        "attrs": {expand(k): v for k, v in attrs.items()},
        **top,
    }


ENTITY = ent(
    {
        "speed": [
            {
                "type": "Property",
                "value": 50,
                "observedAt": "2020-06-01T12:00:00Z",
                "unitCode": "KMH",
                NS + "reliability": {"type": "Property", "value": 0.9},
            }
        ],
        "name": [{"type": "Property", "value": "Hello World"}],
        "ref": [{"type": "Relationship", "object": "urn:ngsi-ld:Shop:7"}],
        "label": [{"type": "LanguageProperty", "languageMap": {"en": "park", "ko": "공원"}}],
        "tags": [{"type": "Property", "value": ["red", "green"]}],
        "category": [{"type": "VocabProperty", "vocab": [NS + "commercial"]}],
        "address": [
            {"type": "Property", "value": {"city": "Seoul", "street": {"no": 5}, "zip": ["1", "2"]}}
        ],
        "temp": [
            {"type": "Property", "value": 10},
            {"type": "Property", "value": 30, "datasetId": "urn:ngsi-ld:Dataset:b"},
        ],
        "readings": [{"type": "ListProperty", "valueList": [1, 2, 3]}],
        "members": [{"type": "ListRelationship", "objectList": [{"object": "urn:a"}, "urn:b"]}],
        "open": [{"type": "Property", "value": True}],
        "day": [{"type": "Property", "value": "2020-06-01"}],
        "at": [{"type": "Property", "value": "10:30:00+02:00"}],
        "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2]}}],
        "https://other.org/vocab#speed": [{"type": "Property", "value": 7}],
    },
    createdAt="2020-01-01T00:00:00Z",
    modifiedAt="2021-01-01T00:00:00Z",
)


def matches(q: str, entity: dict[str, Any] = ENTITY) -> bool:
    return compile_q(parse_q(q), expand)(entity)


def term(attr: str, op: str | None = None, value: Any = None, **path: Any) -> QTerm:
    return QTerm(AttrPath(attr, tuple(path.get("sub", ())), tuple(path.get("keys", ()))), op, value)


def num(v: float) -> QScalar:
    return QScalar("number", v)


# --------------------------------------------------------------------------------- parsing


def test_and_binds_tighter_than_or() -> None:
    assert parse_q("a;b|c") == QOr((QAnd((term("a"), term("b"))), term("c")))
    assert parse_q("a|b;c") == QOr((term("a"), QAnd((term("b"), term("c")))))


def test_nested_parentheses() -> None:
    assert parse_q("((a|b);(c|(d)))") == QAnd(
        (QOr((term("a"), term("b"))), QOr((term("c"), term("d"))))
    )
    assert parse_q("(((a==1)))") == term("a", "==", num(1))


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("a", AttrPath("a")),
        ("a.b.c", AttrPath("a", ("b", "c"))),
        ("a[k1][k2]", AttrPath("a", (), ("k1", "k2"))),
        ("a.b[k]", AttrPath("a", ("b",), ("k",))),
        ("ngsi-ld:x_1/y#z", AttrPath("ngsi-ld:x_1/y#z")),
        ("https://x.org/y#speed", AttrPath("https://x.org/y#speed")),
        ("https://x.org/a.b/c[k]", AttrPath("https://x.org/a.b/c", (), ("k",))),
        ("<https://x.org/y#speed>.observedAt", AttrPath("https://x.org/y#speed", ("observedAt",))),
        ("a.<https://x.org/s>", AttrPath("a", ("https://x.org/s",))),
    ],
)
def test_paths(text: str, path: AttrPath) -> None:
    assert parse_q(text) == QTerm(path)
    assert parse_q(text + "==1") == QTerm(path, "==", num(1))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", num(1)),
        ("-12", num(-12)),
        ("2.5", num(2.5)),
        ("-1.5e3", num(-1500.0)),
        ("1E-2", num(0.01)),
        ('"a\\"b\\\\c\\n\\u00e9"', QScalar("string", 'a"b\\c\né')),
        ('"semi;colon|pipe)"', QScalar("string", "semi;colon|pipe)")),
        ("true", QScalar("boolean", True)),
        ("false", QScalar("boolean", False)),
        ("2018-01-01T10:00:00Z", QScalar("datetime", "2018-01-01T10:00:00Z")),
        ("2018-01-01T10:00:00.123+09:00", QScalar("datetime", "2018-01-01T10:00:00.123+09:00")),
        ("2018-01-01", QScalar("date", "2018-01-01")),
        ("10:00:00Z", QScalar("time", "10:00:00Z")),
        ("urn:ngsi-ld:X:1", QScalar("uri", "urn:ngsi-ld:X:1")),
        ("https://x.org/a?b=c", QScalar("uri", "https://x.org/a?b=c")),
        ('1,"b",urn:c', QList((num(1), QScalar("string", "b"), QScalar("uri", "urn:c")))),
        ("1..5", QRange(num(1), num(5))),
        ("1.5..2.5", QRange(num(1.5), num(2.5))),
        ('"a".."c"', QRange(QScalar("string", "a"), QScalar("string", "c"))),
        (
            "2018-01-01T00:00:00Z..2018-02-01T00:00:00Z",
            QRange(
                QScalar("datetime", "2018-01-01T00:00:00Z"),
                QScalar("datetime", "2018-02-01T00:00:00Z"),
            ),
        ),
    ],
)
def test_values(text: str, value: Any) -> None:
    assert parse_q("a==" + text) == term("a", "==", value)


@pytest.mark.parametrize("op", ["==", "!=", ">", ">=", "<", "<="])
def test_each_comparison_operator_parses(op: str) -> None:
    assert parse_q(f"a{op}3;b") == QAnd((term("a", op, num(3)), term("b")))


def test_regex_runs_to_end_of_term() -> None:
    assert parse_q("a~=^(x|y;z)$;b") == QAnd((term("a", "~=", QRegex("^(x|y;z)$")), term("b")))
    assert parse_q('a!~="(;|)"x|b') == QOr((term("a", "!~=", QRegex('"(;|)"x')), term("b")))
    assert parse_q(r"(a~=x\)y)") == term("a", "~=", QRegex(r"x\)y"))
    assert parse_q("(a~=(b)c)") == term("a", "~=", QRegex("(b)c"))


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("", "empty expression", 0),
        ("a==", "missing value after '=='", 3),
        ("a==1;", "expected an attribute name", 5),
        ("a;;b", "expected an attribute name", 2),
        ("|a", "expected an attribute name", 0),
        ("()", "expected an attribute name", 1),
        ("(a", "expected ')'", 2),
        ("((a)", "expected ')'", 4),
        ("a)", "unexpected ')'", 1),
        ("a==1 ", "unexpected ' ' after value", 4),
        ("a b", "expected an operator", 1),
        ("a=1", "expected an operator", 1),
        ("a==abc", "expected a value", 3),
        ('a=="abc', "unterminated string", 3),
        ('a=="\\x"', "bad escape", 3),
        ("a==1x", "unexpected 'x' after value", 4),
        ("a==1..", "missing value", 6),
        ("a==1..x", "expected a value", 6),
        ('a==1.."x"', "range bounds differ in type", 3),
        ("a==true..false", "a range needs numbers", 3),
        ("a>1..2", "range is only allowed with == or !=", 3),
        ("a>1,2", "list is only allowed with == or !=", 3),
        ("a==1,", "missing value", 5),
        ("a>true", "operator '>' needs a number", 2),
        ("a<urn:x:y", "operator '<' needs a number", 2),
        ("a==2018-13-01", "invalid date", 3),
        ("a==2018-01-01T25:00:00Z", "invalid datetime", 3),
        ("a~=", "missing value after '~='", 3),
        ('a~="x', "unterminated '\"' in pattern", 3),
        ("a[k].b", "'.' cannot follow a '[key]'", 4),
        ("a[]", "expected a key", 2),
        ("a[k", "expected ']'", 3),
        ("a.", "expected an attribute name", 2),
        ("<>", "unterminated or empty '<...>' name", 0),
        ("a==" + "9" * 5000, "number out of range", 3),
        ("(" * 100 + "a" + ")" * 100, "nested too deeply", 64),
    ],
)
def test_syntax_errors(text: str, message: str, offset: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_q(text)
    assert message in str(info.value)
    assert str(info.value).endswith(f"at character {offset}")


def test_invalid_regex_fails_at_compile_time() -> None:
    node = parse_q("a~=x[")
    with pytest.raises(QueryError, match="bad regular expression"):
        compile_q(node, expand)


def test_attrs_in() -> None:
    assert attrs_in(parse_q("a.b==1;(c[k]|d~=x);a|createdAt>2020-01-01")) == {
        "a",
        "c",
        "d",
        "createdAt",
    }


# ------------------------------------------------------------------------------ evaluation


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("speed==50", True),
        ("speed==51", False),
        ("speed!=51", True),
        ("speed!=50", False),
        ("speed>49", True),
        ("speed>50", False),
        ("speed>=50", True),
        ("speed<50", False),
        ("speed<51", True),
        ("speed<=50", True),
        ("speed==50.0", True),
        ("speed==40..60", True),
        ("speed==51..60", False),
        ("speed!=51..60", True),
        ("speed==1,50,3", True),
        ("speed!=1,50,3", False),
        ("speed!=1,2", True),
        ('name=="Hello World"', True),
        ('name>"Hello"', True),
        ('name=="A".."I"', True),
        ("name~=^Hel+o", True),
        ("name~=(?i)world$", True),
        ("name~=^world", False),
        ("name!~=^world", True),
        ("name!~=World", False),
        ("missing!~=x", False),
        ("missing!=1", False),
        ("missing==1", False),
        ("open==true", True),
        ("open==false", False),
        ("open!=false", True),
        ("speed", True),
        ("missing", False),
    ],
)
def test_operators(q: str, expected: bool) -> None:
    assert matches(q) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("speed.observedAt>=2020-01-01T00:00:00Z", True),
        ("speed.observedAt>2020-06-01T12:00:00Z", False),
        ("speed.observedAt==2020-06-01T14:00:00+02:00", True),
        ("speed.observedAt==2020-06-01", True),  # a date compares at day granularity
        ("speed.observedAt<2020-06-01", False),
        ("speed.observedAt==12:00:00Z", True),  # a time compares the UTC time of day
        ("speed.observedAt==2020-05-01T00:00:00Z..2020-07-01T00:00:00Z", True),
        ("speed.observedAt", True),
        ('speed.unitCode=="KMH"', True),
        ("speed.reliability>0.5", True),
        ("speed.reliability<0.5", False),
        ("speed.reliability", True),
        ("speed.nothing", False),
        ("speed.datasetId", False),
        ("temp.datasetId==urn:ngsi-ld:Dataset:b", True),
        ("speed.observedAt.x", False),  # metadata is terminal
        ("createdAt<2020-06-01T00:00:00Z", True),
        ("modifiedAt<2020-06-01T00:00:00Z", False),
        ("createdAt", True),
        ("day>2020-05-31", True),
        ("day<2020-06-01T00:00:01Z", True),  # a date target is midnight UTC
        ("at==08:30:00Z", True),  # times with offsets compare in UTC
        ("at<09:00:00", True),
        ('day=="2020-06-01"', True),  # quoted: plain string comparison
    ],
)
def test_metadata_and_temporal(q: str, expected: bool) -> None:
    assert matches(q) is expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ref==urn:ngsi-ld:Shop:7", True),
        ('ref=="urn:ngsi-ld:Shop:7"', True),
        ("ref==urn:ngsi-ld:Shop:8", False),
        ("ref~=Shop", True),
        ('label=="park"', True),
        ('label=="공원"', True),
        ('label=="garden"', False),
        ("label~=^pa", True),
        ('tags=="green"', True),
        ('tags=="blue"', False),
        ('tags!="blue"', True),
        ('tags!="red"', False),  # != on an array: no element may be equal
        ('tags=="blue","red"', True),
        ('category=="commercial"', True),  # vocab: compared with the expanded term too
        ("category==https://ex.org/commercial", True),
        ('category=="industrial"', False),
        ('category!="industrial"', True),
        ('address[city]=="Seoul"', True),
        ("address[street][no]==5", True),
        ("address[street][no]>5", False),
        ('address[zip]=="2"', True),
        ("address[city]", True),
        ("address[town]", False),
        ("address[city][x]", False),
        ("temp==30", True),  # any instance matches
        ("temp<20", True),
        ("temp>40", False),
        ("temp!=10", True),  # the datasetId b instance is not 10
        ("readings==2", True),
        ("readings>3", False),
        ("members==urn:a", True),
        ("members==urn:b", True),
        ('location[type]=="Point"', True),
        ("https://other.org/vocab#speed==7", True),
        ("<https://other.org/vocab#speed>==8", False),
    ],
)
def test_attribute_kinds(q: str, expected: bool) -> None:
    assert matches(q) is expected


@pytest.mark.parametrize(
    "q",
    [
        'speed=="50"',
        "speed>2020-01-01T00:00:00Z",
        "name>5",
        "name==true",
        "open==1",
        "speed~=5",
        "location>1",
        'speed=="a".."z"',
        "name==2020-01-01",
    ],
)
def test_type_mismatch_is_false(q: str) -> None:
    assert matches(q) is False


def test_boolean_combinations() -> None:
    assert matches("speed==50;name~=Hello")
    assert not matches("speed==50;name~=Bye")
    assert matches("speed==1|name~=Hello")
    assert matches("(speed==1|speed==50);(missing|open==true)")
    assert not matches("(speed==1|speed==2);open==true")


def test_expand_called_at_compile_time_only() -> None:
    calls: list[str] = []

    def counting(term: str) -> str:
        calls.append(term)
        return expand(term)

    pred = compile_q(parse_q("speed.reliability>0;name"), counting)
    n = len(calls)
    for _ in range(3):
        assert pred(ENTITY)
    assert len(calls) == n


# ------------------------------------------------------------------------------ scopeQ


@pytest.mark.parametrize(
    ("q", "scopes", "expected"),
    [
        ("/Madrid/Gardens", ["/Madrid/Gardens"], True),
        ("/Madrid/Gardens", ["/Madrid/Gardens/North"], False),
        ("/Madrid/Gardens", ["/Madrid"], False),
        ("/Madrid/#", ["/Madrid"], True),
        ("/Madrid/#", ["/Madrid/Gardens/North"], True),
        ("/Madrid/#", ["/Madridx"], False),
        ("/Madrid/+/Parks", ["/Madrid/North/Parks"], True),
        ("/Madrid/+/Parks", ["/Madrid/Parks"], False),
        ("/Madrid/+/Parks", ["/Madrid/North/Parks/A"], False),
        ("/#", ["/anything"], True),
        ("/#", [], False),
        ("/#", None, False),
        ("/A", ["/B", "/A"], True),
        ("/A;/B", ["/B", "/A"], True),
        ("/A;/C", ["/B", "/A"], False),
        ("/C|/A", ["/B", "/A"], True),
        ("(/C|/A);(/B/#)", ["/B/x", "/A"], True),
    ],
)
def test_scope_q(q: str, scopes: list[str] | None, expected: bool) -> None:
    assert parse_scope_q(q)(scopes) is expected


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("", "empty expression"),
        ("Madrid", "expected a scope starting with '/'"),
        ("/", "expected a scope"),
        ("/A/#/B", "unexpected '/'"),
        ("/A+", "unexpected '+'"),
        ("/A;", "expected a scope"),
        ("(/A", "expected ')'"),
        ("/A b", "unexpected ' '"),
    ],
)
def test_scope_q_errors(q: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_scope_q(q)


# ------------------------------------------------------------------------------ properties

names = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,6}", fullmatch=True)
iris = st.from_regex(r"https://[a-z]{1,5}\.org/[a-z.]{0,5}#[a-z]{1,4}", fullmatch=True)
keys = st.from_regex(r"[a-zA-Z0-9_]{1,5}", fullmatch=True)
paths = st.builds(
    AttrPath,
    st.one_of(names, iris),
    st.lists(st.one_of(names, iris), max_size=2).map(tuple),
    st.lists(keys, max_size=2).map(tuple),
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False)
).map(num)
strings = st.text(max_size=8).map(lambda s: QScalar("string", s))
datetimes = st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)).map(
    lambda d: QScalar("datetime", d.strftime("%Y-%m-%dT%H:%M:%S") + "Z")
)
dates = st.dates(min_value=datetime(1000, 1, 1).date()).map(
    lambda d: QScalar("date", d.isoformat())
)
times = st.times().map(lambda t: QScalar("time", t.strftime("%H:%M:%S")))
comparable = st.one_of(numbers, strings, datetimes, dates, times)
scalars = st.one_of(
    comparable,
    st.booleans().map(lambda b: QScalar("boolean", b)),
    st.from_regex(r"urn:ngsi-ld:[A-Z][a-z]{0,4}:[0-9]{1,3}", fullmatch=True).map(
        lambda u: QScalar("uri", u)
    ),
)
patterns = st.from_regex(r"[a-z^$.*+?]{1,5}(\([a-z;|]{0,3}\))?", fullmatch=True).map(QRegex)


@st.composite
def terms(draw: st.DrawFn) -> QTerm:
    path = draw(paths)
    kind = draw(st.sampled_from(["exists", "eq", "order", "list", "range", "regex"]))
    if kind == "exists":
        return QTerm(path)
    if kind == "eq":
        return QTerm(path, draw(st.sampled_from(["==", "!="])), draw(scalars))
    if kind == "order":
        return QTerm(path, draw(st.sampled_from([">", ">=", "<", "<="])), draw(comparable))
    if kind == "list":
        items = draw(st.lists(scalars, min_size=2, max_size=4))
        return QTerm(path, draw(st.sampled_from(["==", "!="])), QList(tuple(items)))
    if kind == "range":
        low = draw(comparable)
        same = {"number": numbers, "string": strings, "datetime": datetimes, "date": dates}
        high = draw(same.get(low.kind, times))
        return QTerm(path, draw(st.sampled_from(["==", "!="])), QRange(low, high))
    return QTerm(path, draw(st.sampled_from(["~=", "!~="])), draw(patterns))


trees = st.recursive(
    terms(),
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda c: QAnd(tuple(c))),
        st.lists(kids, min_size=2, max_size=3).map(lambda c: QOr(tuple(c))),
    ),
    max_leaves=8,
)


def render_name(name: str) -> str:
    return f"<{name}>" if "://" in name else name


def render_scalar(v: QScalar) -> str:
    if v.kind == "string":
        return json.dumps(v.value)
    if v.kind == "boolean":
        return "true" if v.value else "false"
    if v.kind == "number":
        return repr(v.value)
    return str(v.value)


def render(node: QNode) -> str:
    if isinstance(node, QAnd | QOr):
        sep = ";" if isinstance(node, QAnd) else "|"
        return sep.join(
            f"({render(c)})" if not isinstance(c, QTerm) else render(c) for c in node.children
        )
    p = node.path
    text = ".".join(render_name(n) for n in (p.attr, *p.sub_attrs))
    text += "".join(f"[{k}]" for k in p.keys)
    if node.op is None:
        return text
    v = node.value
    if isinstance(v, QRegex):
        body = v.pattern
    elif isinstance(v, QList):
        body = ",".join(render_scalar(i) for i in v.items)
    elif isinstance(v, QRange):
        body = f"{render_scalar(v.low)}..{render_scalar(v.high)}"
    else:
        assert isinstance(v, QScalar)
        body = render_scalar(v)
    return f"{text}{node.op}{body}"


@settings(max_examples=300)
@given(trees)
def test_render_parse_round_trip(tree: QNode) -> None:
    assert parse_q(render(tree)) == tree


GRAMMAR_CHARS = 'ab.[]()";|=!<>~,:/#-+0123456789eETZ\\ <>'


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=30), st.text(alphabet=GRAMMAR_CHARS, max_size=30)))
def test_arbitrary_text_only_raises_query_error(text: str) -> None:
    try:
        node = parse_q(text)
        compile_q(node, expand)(ENTITY)
    except QueryError:
        pass


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=20), st.text(alphabet="/ab+#;|() ", max_size=20)))
def test_arbitrary_scope_text_only_raises_query_error(text: str) -> None:
    try:
        parse_scope_q(text)(["/a/b"])
    except QueryError:
        pass


SIMPLE_TERMS = ["a==1", "a>1", "b<=2", "b!=3", "a", "b", "a==1,2", "b==0..2", "c~=x", "c!~=^y"]
values = st.one_of(
    st.integers(0, 3), st.sampled_from(["x", "yx", "y"]), st.lists(st.integers(0, 3))
)
entities = st.fixed_dictionaries(
    {},
    optional={n: st.lists(values, min_size=1, max_size=2) for n in "abc"},
).map(lambda d: ent({k: [{"type": "Property", "value": v} for v in vs] for k, vs in d.items()}))


@given(st.sampled_from(SIMPLE_TERMS), st.sampled_from(SIMPLE_TERMS), entities)
def test_and_or_semantics(left: str, right: str, entity: dict[str, Any]) -> None:
    lm, rm = matches(left, entity), matches(right, entity)
    assert matches(f"{left};{right}", entity) == (lm and rm)
    assert matches(f"{left}|{right}", entity) == (lm or rm)
    assert matches(f"({left}|{right});{left}", entity) == lm

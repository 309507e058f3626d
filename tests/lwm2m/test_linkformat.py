from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from translator.lwm2m import Link, Lwm2mFormatError, Path, format_links, parse_links, parse_registration

from .support import vectors


def link_payloads(op: str) -> list[tuple[str, str]]:
    return [
        (v["exchange"], bytes.fromhex(v["payload_hex"]).decode())
        for v in vectors()
        if v["op"] == op and v["direction"] == "client->server" and v["payload_hex"]
        and v["content_format"] in (40, None)
    ]  # fmt: skip


def test_wakaama_registration() -> None:
    payload = link_payloads("register")[0][1]
    reg = parse_registration(payload)
    assert reg.root == "/"
    assert reg.content_formats == (110,)
    assert reg.objects == {1: "1.1", 2: None, 3: None, 4: None, 5: None, 6: None, 7: None, 31024: "1.0"}
    assert Path(3, 0) in reg.instances and Path(31024, 10) in reg.instances
    assert reg.links[0].target == "/" and reg.links[0].get("rt") == "oma.lwm2m"


def test_every_captured_register_and_update_payload_parses() -> None:
    payloads = link_payloads("register") + link_payloads("update")
    assert len(payloads) >= 9
    for exchange, payload in payloads:
        reg = parse_registration(payload)
        assert 3 in reg.objects, exchange
        assert Path(3, 0) in reg.instances, exchange
        assert format_links(parse_links(payload)).count(",") == payload.count(","), exchange


def test_anjay_registration_quoted_and_unquoted_ver() -> None:
    by_run = {v["run"]: v for v in vectors() if v["op"] == "register" and v["direction"] == "client->server"}
    for run in ("anjay", "anjay-v1.1", "anjay-v1.0"):
        payload = bytes.fromhex(by_run[run]["payload_hex"])
        reg = parse_registration(payload)
        assert reg.objects[10] == "1.1", run
        assert reg.objects[3303] is None and Path(3303, 0) in reg.instances
        assert Path(1, 1) in reg.instances and 33605 in reg.objects
        assert reg.content_formats == ()  # Anjay sends no </>;rt=... link
    assert '</10>;ver="1.1"' in bytes.fromhex(by_run["anjay-v1.0"]["payload_hex"]).decode()


def test_update_after_create_lists_new_instance() -> None:
    payloads = dict(link_payloads("update"))
    assert Path(31024, 5) in parse_registration(payloads["wakaama-31"]).instances
    assert Path(31024, 5) not in parse_registration(payloads["wakaama-33"]).instances


def test_discover_answers() -> None:
    answers = {e: parse_links(p) for e, p in link_payloads("discover")}
    anjay = {str(link.path): link for link in answers["anjay-03"]}
    assert anjay["/3/0/6"].get_int("dim") == 1
    assert anjay["/3/0/0"].get_int("dim") is None
    assert "/3/0/12" not in anjay
    (attr,) = answers["wakaama-17"]
    assert attr.path == Path(3, 0, 9)
    assert (attr.get_int("pmin"), attr.get_int("pmax")) == (1, 5)
    assert attr.attributes == {"pmin": "1", "pmax": "5"}
    assert [str(link.path) for link in answers["anjay-02"]][:2] == ["/3303", "/3303/0"]


def test_alternate_root_and_ct_list() -> None:
    reg = parse_registration(
        '</lwm2m>;rt="oma.lwm2m";ct="60 110 11544", </lwm2m/1>;ver=1.2,\n </lwm2m/3/0>,</x>'
    )
    assert reg.root == "/lwm2m"
    assert reg.content_formats == (60, 110, 11544)
    assert reg.objects == {1: "1.2", 3: None}
    assert reg.instances == (Path(3, 0),)


def test_parse_details() -> None:
    (link,) = parse_links('</a>;obs;title="x, y; \\"z\\"";gt=1.5;ct=0;rt=a;rt=b')
    assert link.has("obs") and link.get("obs") is None
    assert link.get("title") == 'x, y; "z"'
    assert link.get_float("gt") == 1.5 and link.get_int("ct") == 0
    assert link.get("rt") == "a" and link.attributes["rt"] == "a"
    assert link.path is None
    assert parse_links("") == [] and parse_links(b"  ") == []


def test_serialize() -> None:
    links = [
        Link("/", (("rt", "oma.lwm2m"), ("ct", "110"))),
        Link("/1", (("ver", "1.1"),)),
        Link("/3/0/9", (("pmin", "1"), ("pmax", "5"), ("obs", None))),
        Link("/x", (("title", 'a "b",c'),)),
    ]
    text = format_links(links)
    assert (
        text == '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</3/0/9>;pmin=1;pmax=5;obs,</x>;title="a \\"b\\",c"'
    )
    assert parse_links(text) == links


@pytest.mark.parametrize(
    "payload",
    [
        "<",
        "</a",
        "/a",
        "</a>;",
        "</a>;=1",
        "</a>;x=",
        '</a>;x="1',
        "</a>,",
        "</a> </b>",
        b"\xff",
        "</a>;x=1 y",
    ],
)
def test_parse_rejects(payload: str | bytes) -> None:
    with pytest.raises(Lwm2mFormatError):
        parse_links(payload)


names = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
values = st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n\t"), max_size=12)
links_strategy = st.lists(
    st.builds(
        Link,
        st.text(st.characters(codec="utf-8", exclude_characters=">"), max_size=15),
        st.lists(st.tuples(names, values), max_size=4).map(tuple),
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(links_strategy)
def test_serialize_parse_round_trip(links: list[Link]) -> None:
    assert parse_links(format_links(links)) == links


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet='<>;,="/\\ab1 ', max_size=60))
def test_arbitrary_input_raises_only_typed_error(payload: str | bytes) -> None:
    with contextlib.suppress(Lwm2mFormatError):
        parse_registration(payload)

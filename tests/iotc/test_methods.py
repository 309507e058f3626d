from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.errors import MethodNameError
from translator.iotc.protocol.methods import (
    Invocation,
    MethodName,
    MethodStatus,
    decode_payload,
    join_method_name,
    method_response,
    split_method_name,
)
from translator.iotc.protocol.topics import MethodRequest, parse_hub_topic


def test_split_and_join() -> None:
    assert split_method_name("reboot") == MethodName("reboot")
    assert split_method_name("thermostat1*getMaxMinReport") == MethodName("getMaxMinReport", "thermostat1")
    assert join_method_name("thermostat1", "getMaxMinReport") == "thermostat1*getMaxMinReport"
    assert join_method_name(None, "reboot") == "reboot"
    assert str(MethodName("x", "c")) == "c*x"


@pytest.mark.parametrize("name", ["", "*x", "c*", "a*b*c"])
def test_bad_names(name: str) -> None:
    with pytest.raises(MethodNameError):
        split_method_name(name)


@pytest.mark.parametrize(("component", "command"), [(None, ""), ("", "x"), ("a*b", "x"), (None, "a*b")])
def test_bad_joins(component: str | None, command: str) -> None:
    with pytest.raises(MethodNameError):
        join_method_name(component, command)


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,63}", fullmatch=True)


@given(component=st.none() | _names, command=_names)
def test_name_round_trip(component: str | None, command: str) -> None:
    assert split_method_name(join_method_name(component, command)) == MethodName(command, component)


def test_invocation_and_response() -> None:
    request = parse_hub_topic("$iothub/methods/POST/thermostat1*getMaxMinReport/?$rid=42")
    assert isinstance(request, MethodRequest)
    invocation = Invocation.from_message(request, b'"2024-01-01T00:00:00Z"')
    assert invocation.method == MethodName("getMaxMinReport", "thermostat1")
    assert invocation.payload == "2024-01-01T00:00:00Z"
    topic, body = invocation.respond(MethodStatus.OK, {"maxTemp": 30.5})
    assert topic == "$iothub/methods/res/200/?$rid=42"
    assert json.loads(body) == {"maxTemp": 30.5}
    assert method_response("1", 504, None) == ("$iothub/methods/res/504/?$rid=1", b"null")
    with pytest.raises(ValueError, match="status"):
        method_response("1", 42)


def test_payload_decoding() -> None:
    assert decode_payload(b"") is None
    assert decode_payload(b" ") is None
    assert decode_payload(b'{"a": 1}') == {"a": 1}
    assert decode_payload(b"plain") == "plain"

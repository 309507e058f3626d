"""The DPS registration machine driven by scripted DPS answers (no sockets, no sleeps)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.iotc.protocol.backoff import Backoff, BackoffPolicy
from translator.iotc.protocol.dps import Assigned, DpsRegistration, DpsState, Publish, Wait
from translator.iotc.protocol.errors import (
    DeviceBlockedError,
    ProvisioningError,
    ProvisioningFailedError,
    ProvisioningProtocolError,
    ProvisioningThrottledError,
    ProvisioningUnauthorizedError,
)
from translator.iotc.protocol.topics import DpsOperationStatus, DpsRegister, DpsResponse, parse_dps_topic

MODEL = "dtmi:com:example:Thermostat;1"
ASSIGNED_BODY = {
    "operationId": "op-1",
    "status": "assigned",
    "registrationState": {
        "registrationId": "dev-1",
        "assignedHub": "iotc-123.azure-devices.net",
        "deviceId": "dev-1",
        "status": "assigned",
        "substatus": "initialAssignment",
        "payload": {"hello": "world"},
    },
}


def _machine(max_retries: int = 3, draw: float = 0.5) -> DpsRegistration:
    backoff = Backoff(BackoffPolicy(base=1, cap=8), lambda: draw, lambda: 0.0)
    return DpsRegistration("dev-1", model_id=MODEL, backoff=backoff, max_retries=max_retries)


def _answer(
    machine: DpsRegistration, publish: Publish, status: int, body: Any, retry_after: float | None = None
) -> Wait | Assigned | None:
    parsed = parse_dps_topic(publish.topic)
    assert isinstance(parsed, (DpsRegister, DpsOperationStatus))
    response = DpsResponse(status, parsed.rid, retry_after)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return machine.receive(response.topic, payload)


def _state(machine: DpsRegistration) -> DpsState:
    # A call, not an attribute: mypy would otherwise keep an earlier narrowing of `machine.state`.
    return machine.state


def test_register_poll_assign() -> None:
    machine = _machine()
    assert machine.subscription == "$dps/registrations/res/#"
    first = machine.start()
    assert first.topic == "$dps/registrations/PUT/iotdps-register/?$rid=1"
    assert json.loads(first.payload) == {"registrationId": "dev-1", "payload": {"modelId": MODEL}}

    event = _answer(machine, first, 202, {"operationId": "op-1", "status": "assigning"}, retry_after=3)
    assert event == Wait(3.0, "assigning")
    assert _state(machine) is DpsState.WAITING
    poll = machine.next_publish()
    assert poll.topic == "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=op-1"

    # A 202 without retry-after falls back to the default poll interval.
    assert _answer(machine, poll, 202, {"operationId": "op-1", "status": "assigning"}) == Wait(
        2.0, "assigning"
    )
    poll = machine.next_publish()
    event = _answer(machine, poll, 200, ASSIGNED_BODY)
    assert event == Assigned("iotc-123.azure-devices.net", "dev-1", "initialAssignment", {"hello": "world"})
    assert _state(machine) is DpsState.ASSIGNED
    assert machine.assignment == event


def test_without_model_id_there_is_no_payload() -> None:
    machine = DpsRegistration("dev-1", backoff=Backoff(BackoffPolicy(), lambda: 0.0, lambda: 0.0))
    assert json.loads(machine.start().payload) == {"registrationId": "dev-1"}


def test_foreign_and_stale_messages_are_ignored() -> None:
    machine = _machine()
    first = machine.start()
    assert machine.receive("$iothub/twin/res/200/?$rid=1", b"{}") is None
    assert machine.receive("$dps/registrations/res/200/?$rid=999", b"{}") is None
    assert machine.state is DpsState.AWAITING_RESPONSE
    assert _answer(machine, first, 202, {"operationId": "op"}) is not None
    # The same answer again (a duplicate QoS 1 delivery) is not ours any more.
    assert _answer(machine, first, 202, {"operationId": "op"}) is None


def test_throttling_backs_off_then_gives_up() -> None:
    machine = _machine(max_retries=2)
    publish = machine.start()
    event = _answer(machine, publish, 429, {"errorCode": 429001, "message": "throttled"}, retry_after=1)
    # max(retry-after 1, draw 0.5 x ceiling 1) = 1; next the ceiling doubles: max(0.2, 0.5 x 2) = 1.
    assert event == Wait(1.0, "throttled")
    publish = machine.next_publish()
    assert parse_dps_topic(publish.topic) == DpsRegister("2")  # no operation id yet: register again
    event = _answer(machine, publish, 429, {"errorCode": 429001}, retry_after=0.2)
    assert event == Wait(1.0, "throttled")
    publish = machine.next_publish()
    with pytest.raises(ProvisioningThrottledError) as info:
        _answer(machine, publish, 429, {"errorCode": 429001, "trackingId": "t"}, retry_after=30)
    assert info.value.retry_after == 30
    assert info.value.tracking_id == "t"
    assert machine.state is DpsState.FAILED


def test_server_errors_are_retried_during_polling() -> None:
    machine = _machine()
    publish = machine.start()
    _answer(machine, publish, 202, {"operationId": "op-9"})
    publish = machine.next_publish()
    event = _answer(machine, publish, 503, b"")
    assert isinstance(event, Wait)
    assert event.reason == "retry"
    assert "operationId=op-9" in machine.next_publish().topic


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            401,
            {"errorCode": 401002, "trackingId": "t", "message": "unauthorized"},
            ProvisioningUnauthorizedError,
        ),
        (400, {"errorCode": 401003}, ProvisioningUnauthorizedError),
        (400, {"errorCode": 400209, "message": "blocked"}, DeviceBlockedError),
        (404, {"errorCode": 404201}, ProvisioningError),
        (400, b"<html>", ProvisioningProtocolError),
        (202, {"status": "assigning"}, ProvisioningProtocolError),
        (200, {"status": "assigned", "registrationState": {"deviceId": "d"}}, ProvisioningProtocolError),
    ],
)
def test_error_answers(status: int, body: Any, error: type[ProvisioningError]) -> None:
    machine = _machine()
    with pytest.raises(error) as info:
        _answer(machine, machine.start(), status, body)
    assert type(info.value) is error
    assert info.value.status == status
    assert machine.state is DpsState.FAILED


@pytest.mark.parametrize("outcome", ["failed", "disabled", "unassigned"])
def test_unsuccessful_registration_states(outcome: str) -> None:
    machine = _machine()
    body = {
        "status": outcome,
        "registrationState": {
            "status": outcome,
            "substatus": "x",
            "errorCode": 400000,
            "errorMessage": "nope",
        },
    }
    with pytest.raises(ProvisioningFailedError) as info:
        _answer(machine, machine.start(), 200, body)
    assert info.value.registration_status == outcome
    assert info.value.substatus == "x"
    assert str(info.value) == "nope"


def test_blocked_device_reported_in_registration_state() -> None:
    machine = _machine()
    body = {"status": "failed", "registrationState": {"status": "failed", "errorCode": 400209}}
    with pytest.raises(DeviceBlockedError):
        _answer(machine, machine.start(), 200, body)


def test_misuse_is_refused() -> None:
    machine = _machine()
    with pytest.raises(RuntimeError):
        machine.next_publish()
    machine.start()
    with pytest.raises(RuntimeError):
        machine.start()
    with pytest.raises(ValueError, match="registration id"):
        DpsRegistration("", backoff=Backoff(BackoffPolicy(), lambda: 0.0, lambda: 0.0))


@given(
    script=st.lists(
        st.sampled_from(["assigning", "throttled", "server"]),
        max_size=12,
    ),
    retry_after=st.none() | st.floats(0, 60),
)
def test_any_sequence_of_transient_answers_ends_assigned_or_typed(
    script: list[str], retry_after: float | None
) -> None:
    machine = _machine(max_retries=4)
    publish = machine.start()
    answers = {
        "assigning": (202, {"operationId": "op", "status": "assigning"}),
        "throttled": (429, {"errorCode": 429001}),
        "server": (500, {"errorCode": 500000}),
    }
    try:
        for step in script:
            status, body = answers[step]
            event = _answer(machine, publish, status, body, retry_after)
            assert isinstance(event, Wait)
            assert event.delay >= (retry_after or 0.0)
            assert event.delay <= max(retry_after or 0.0, 8.0)
            publish = machine.next_publish()
        assert isinstance(_answer(machine, publish, 200, ASSIGNED_BODY), Assigned)
    except ProvisioningError as exc:
        assert isinstance(exc, ProvisioningThrottledError) or exc.status == 500
        assert machine.state is DpsState.FAILED


def test_a_downstream_device_names_its_gateway_in_the_registration_payload() -> None:
    """IoT Central relates a downstream device to its gateway from `payload.iotcGateway.iotcGatewayId`
    (https://learn.microsoft.com/azure/iot-central/core/tutorial-define-gateway-device-type)."""
    backoff = Backoff(BackoffPolicy(base=1, cap=8), lambda: 0.5, lambda: 0.0)
    downstream = DpsRegistration("dev-1", model_id=MODEL, gateway_id="gw-1", backoff=backoff)
    assert json.loads(downstream.start().payload) == {
        "registrationId": "dev-1",
        "payload": {"modelId": MODEL, "iotcGateway": {"iotcGatewayId": "gw-1"}},
    }
    alone = DpsRegistration("dev-2", model_id=MODEL, backoff=backoff)
    assert json.loads(alone.start().payload) == {"registrationId": "dev-2", "payload": {"modelId": MODEL}}
    bare = DpsRegistration("dev-3", backoff=backoff)
    assert json.loads(bare.start().payload) == {"registrationId": "dev-3"}

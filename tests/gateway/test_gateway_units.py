"""The gateway's pure parts: its template (accepted as IoT Central's gateway template shape), the health
telemetry from two moments of the translator's figures, and what its commands answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.templates import template_problem
from translator.cli import main
from translator.gateway.commands import GatewayCommands
from translator.gateway.health import Figures, telemetry
from translator.gateway.model import gateway_interface, gateway_template, session_telemetry
from translator.gateway.settings import DEFAULT_MODEL_ID
from translator.iotc.protocol.methods import Invocation, MethodName


def test_the_template_is_a_gateway_template_with_a_relationship() -> None:
    template = gateway_template(DEFAULT_MODEL_ID)
    assert template_problem(DEFAULT_MODEL_ID, template) == ""
    assert "GatewayModel" in template["@type"]
    contents = template["capabilityModel"]["contents"]
    relationships = [c for c in contents if c["@type"] == ["Relationship", "GatewayDevice"]]
    assert relationships == [
        {
            "@type": ["Relationship", "GatewayDevice"],
            "name": "downstream",
            "displayName": "LwM2M devices",
            "target": [],
        }
    ]
    names = {c["name"] for c in contents}
    assert {
        "devices",
        "sessionsConnected",
        "sessionsWaitingForApproval",
        "outboxDepth",
        "messagesPerSecond",
    } <= names
    assert {"version", "listeningPorts", "disconnectDevice", "replayOutbox"} <= names
    assert gateway_interface(DEFAULT_MODEL_ID)["@context"] == [
        "dtmi:iotcentral:context;2",
        "dtmi:dtdl:context;2",
    ]


def test_session_states_become_telemetry_names() -> None:
    assert session_telemetry("waiting for approval") == "sessionsWaitingForApproval"
    assert session_telemetry("backing off") == "sessionsBackingOff"


def test_health_telemetry_counts_and_a_rate_over_the_interval() -> None:
    before = Figures(
        at=10.0, devices=1, registrations=1, sessions={"connected": 1}, outbox_depth=0, messages_out=100
    )
    now = Figures(
        at=12.0,
        devices=3,
        registrations=2,
        sessions={"connected": 2, "waiting for approval": 1, "closed": 0},
        outbox_depth=7,
        messages_out=150,
    )
    assert telemetry(now, before) == {
        "devices": 3,
        "registrations": 2,
        "sessionsProvisioning": 0,
        "sessionsConnecting": 0,
        "sessionsConnected": 2,
        "sessionsBackingOff": 0,
        "sessionsWaitingForApproval": 1,
        "outboxDepth": 7,
        "messagesPerSecond": 25.0,
    }
    assert "messagesPerSecond" not in telemetry(now, None)  # no rate from one moment


class _Sessions:
    def __init__(self, *ids: str) -> None:
        self.open = set(ids)
        self.closed: list[str] = []

    def get(self, device_id: str) -> object | None:
        return object() if device_id in self.open else None

    async def close_session(self, device_id: str) -> None:
        self.open.discard(device_id)
        self.closed.append(device_id)


def _call(command: str, payload: Any) -> Invocation:
    return Invocation(rid="1", method=MethodName(command), payload=payload)


async def test_commands_answer_honestly() -> None:
    sessions = _Sessions("plain-1")
    commands = GatewayCommands({}, sessions, lambda: 4)
    # A device with a session but no life (an unregistered sensor's) is disconnected too.
    assert await commands(_call("disconnectDevice", "plain-1")) == (
        200,
        {"deviceId": "plain-1", "disconnected": True},
    )
    assert sessions.closed == ["plain-1"]
    assert await commands(_call("disconnectDevice", {"deviceId": "nobody"})) == (
        404,
        {"deviceId": "nobody", "disconnected": False},
    )
    status, _ = await commands(_call("disconnectDevice", 42))
    assert status == 400
    assert await commands(_call("replayOutbox", None)) == (200, {"devices": 0, "messages": 4})
    status, _ = await commands(_call("reboot", None))
    assert status == 404


def test_template_export_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "export", "--gateway", "--format", "template"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == gateway_template(DEFAULT_MODEL_ID)
    assert DEFAULT_MODEL_ID in err
    assert main(["template", "export", "--gateway"]) == 0
    assert json.loads(capsys.readouterr().out) == [gateway_interface(DEFAULT_MODEL_ID)]

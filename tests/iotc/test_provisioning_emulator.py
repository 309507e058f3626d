"""DPS over TLS MQTT against the emulator: success and each error, with both transports."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import RestClient, device_template
from tests.iotc.conftest import FAST_BACKOFF, dps_endpoint
from translator.iotc.client.credentials import SymmetricKey
from translator.iotc.client.dps_client import provision
from translator.iotc.client.lean_transport import ConnectionGroup, LeanTransport
from translator.iotc.client.transport import MessageHandler, MqttTransport
from translator.iotc.protocol.errors import (
    DeviceBlockedError,
    ProvisioningThrottledError,
    ProvisioningUnauthorizedError,
)

MODEL = "dtmi:example:Thermostat;1"


@pytest.fixture
async def group() -> ConnectionGroup:
    return ConnectionGroup()


def lean(group: ConnectionGroup):
    def factory(handler: MessageHandler) -> MqttTransport:
        return LeanTransport(handler, group)

    return factory


@pytest.mark.parametrize("transport", ["lean", "aiomqtt"])
async def test_provision_assigns_a_hub_and_records_the_model(
    emulator: Emulator, rest: RestClient, group: ConnectionGroup, transport: str, tmp_path: Path
) -> None:
    endpoint = dps_endpoint(emulator)
    if transport == "aiomqtt":
        # paho verifies the name it dials: dial 127.0.0.1, which the emulator's certificate names.
        from translator.iotc.client.aiomqtt_transport import AiomqttTransport

        factory = AiomqttTransport
        endpoint = endpoint.__class__(
            endpoint.id_scope, "127.0.0.1", endpoint.port, "127.0.0.1", endpoint.ca_file
        )
    else:
        factory = lean(group)
    emulator.publish_template(MODEL, device_template(MODEL))
    key = SymmetricKey.from_group(emulator.application.group_primary_key, "prov-1")
    assigned = await provision(endpoint, "prov-1", key, transport_factory=factory, model_id=MODEL, timeout=20)
    assert assigned.device_id == "prov-1"
    assert assigned.assigned_hub in emulator.config.hub_names
    device = await rest.get("/api/devices/prov-1")
    assert device["provisioned"] is True
    assert device["template"] == MODEL
    await group.close()


async def test_secondary_group_key_is_accepted(emulator: Emulator, group: ConnectionGroup) -> None:
    key = SymmetricKey.from_group(emulator.application.group_secondary_key, "prov-2")
    assigned = await provision(
        dps_endpoint(emulator), "prov-2", key, transport_factory=lean(group), timeout=20
    )
    assert assigned.device_id == "prov-2"


async def test_wrong_key_is_unauthorized(emulator: Emulator, group: ConnectionGroup) -> None:
    key = SymmetricKey.from_group(emulator.application.group_primary_key, "someone-else")
    with pytest.raises(ProvisioningUnauthorizedError) as caught:
        await provision(dps_endpoint(emulator), "prov-3", key, transport_factory=lean(group), timeout=20)
    assert caught.value.error_code == 401002
    assert caught.value.status == 401


async def test_blocked_device_is_refused(
    emulator: Emulator, rest: RestClient, group: ConnectionGroup
) -> None:
    status, _ = await rest.request("PUT", "/api/devices/prov-4", {"enabled": False})
    assert status == 200
    key = SymmetricKey.from_group(emulator.application.group_primary_key, "prov-4")
    with pytest.raises(DeviceBlockedError) as caught:
        await provision(dps_endpoint(emulator), "prov-4", key, transport_factory=lean(group), timeout=20)
    assert caught.value.error_code == 400209


async def test_throttling_is_retried_after_retry_after(
    emulator: Emulator, rest: RestClient, group: ConnectionGroup
) -> None:
    status, _ = await rest.request("POST", "/emulator/faults/throttle", {"seconds": 1.5, "scope": "dps"})
    assert status == 200
    key = SymmetricKey.from_group(emulator.application.group_primary_key, "prov-5")
    started = time.monotonic()
    assigned = await provision(
        dps_endpoint(emulator),
        "prov-5",
        key,
        transport_factory=lean(group),
        timeout=30,
        backoff_policy=FAST_BACKOFF,
    )
    assert assigned.device_id == "prov-5"
    # The first answer was 429 with retry-after 2 (1.5 s rounded up): the retry honoured it.
    assert time.monotonic() - started >= 1.5


async def test_throttling_beyond_the_retry_budget_raises(
    emulator: Emulator, rest: RestClient, group: ConnectionGroup
) -> None:
    await rest.request("POST", "/emulator/faults/throttle", {"seconds": 60, "scope": "dps"})
    key = SymmetricKey.from_group(emulator.application.group_primary_key, "prov-6")
    with pytest.raises(ProvisioningThrottledError):
        await provision(dps_endpoint(emulator), "prov-6", key, transport_factory=lean(group), timeout=4)

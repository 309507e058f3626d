"""X.509 group enrollment: device certificates chained to an enrollment CA, CN = device id."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import emulator_config
from tests.emulator.clients import (
    PUBLISH,
    RawClient,
    dps_client,
    dps_username,
    hub_client,
    hub_username,
    next_message,
    parse_response,
    publish_packet,
    register,
    register_topic,
)
from tests.pki import Issuer, make_ca, make_device_cert

DEVICE = "x509-dev-01"


@dataclass(frozen=True, slots=True)
class X509World:
    emulator: Emulator
    enrollment: Issuer
    directory: Path


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[X509World]:
    certs = tmp_path / "certs"
    certs.mkdir()
    enrollment = make_ca(certs, "test-enrollment-ca")
    config = emulator_config(tmp_path / "emulator", x509_enrollment_ca=enrollment.path)
    async with Emulator(config) as emulator:
        yield X509World(emulator, enrollment, certs)


async def test_dps_and_hub_with_a_device_certificate(world: X509World) -> None:
    certificate = make_device_cert(world.directory, world.enrollment, DEVICE)
    async with dps_client(world.emulator, DEVICE, certificate=certificate) as client:
        response = await register(client, DEVICE)
    assert response.status == 200, response
    state = response.body["registrationState"]
    assert state["deviceId"] == DEVICE
    assert "x509" in state
    hub = state["assignedHub"]
    assert world.emulator.application.devices[DEVICE].attestation == "x509"

    async with hub_client(world.emulator, hub, DEVICE, certificate=certificate) as client:
        await client.subscribe("$iothub/twin/res/#", qos=0)
        await client.publish("$iothub/twin/GET/?$rid=1", b"", qos=0)
        assert parse_response(await next_message(client)).status == 200


async def test_certificate_with_another_cn_is_401(world: X509World) -> None:
    other = make_device_cert(world.directory, world.enrollment, "x509-someone-else")
    async with dps_client(world.emulator, DEVICE, certificate=other) as client:
        response = await register(client, DEVICE)
    assert response.status == 401
    assert response.body["errorCode"] == 401002
    assert DEVICE not in world.emulator.application.devices


async def test_hub_refuses_another_cn(world: X509World) -> None:
    own = make_device_cert(world.directory, world.enrollment, DEVICE)
    async with dps_client(world.emulator, DEVICE, certificate=own) as client:
        hub = (await register(client, DEVICE)).body["registrationState"]["assignedHub"]
    other = make_device_cert(world.directory, world.enrollment, "x509-someone-else")
    raw = await RawClient.open(world.emulator, certificate=other)
    try:
        assert await raw.connect(DEVICE, hub_username(hub, DEVICE), None) == (5, False)
    finally:
        await raw.close()


@pytest.mark.filterwarnings("ignore:Attribute's length:UserWarning")  # the point of the test
async def test_common_name_over_64_characters_is_refused(world: X509World) -> None:
    """ "The subject common name of an X.509 certificate is limited to 64 characters"
    (https://learn.microsoft.com/azure/iot-dps/iot-dps-https-x509-support): such a device cannot register."""
    long_id = "x509-" + "d" * 60
    certificate = make_device_cert(world.directory, world.enrollment, long_id)
    async with dps_client(world.emulator, long_id, certificate=certificate) as client:
        response = await register(client, long_id)
    assert response.status == 401, response
    assert world.emulator.application.device(long_id) is None


async def test_certificate_from_another_ca_fails_the_handshake(world: X509World) -> None:
    rogue = make_ca(world.directory, "rogue-ca")
    certificate = make_device_cert(world.directory, rogue, DEVICE)
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError)):
        raw = await RawClient.open(world.emulator, certificate=certificate)
        try:
            # TLS 1.3 reports the rejected client certificate only on the first read.
            scope = world.emulator.application.id_scope
            await raw.connect(DEVICE, dps_username(scope, DEVICE), None)
        finally:
            await raw.close()


async def test_sas_devices_still_work_with_x509_enabled(world: X509World) -> None:
    async with dps_client(world.emulator, "sas-dev") as client:
        assert (await register(client, "sas-dev")).status == 200
    # No certificate and no password: refused with 401 at DPS.
    raw = await RawClient.open(world.emulator)
    try:
        scope = world.emulator.application.id_scope
        assert await raw.connect("bare-dev", dps_username(scope, "bare-dev"), None) == (0, False)
        await raw.subscribe([("$dps/registrations/res/#", 0)])
        await raw.send(publish_packet(register_topic(1), b'{"registrationId": "bare-dev"}'))
        answer = await raw.expect(PUBLISH)
        assert answer.topic.startswith("$dps/registrations/res/401/?$rid=1")
        assert json.loads(answer.payload)["errorCode"] == 401002
    finally:
        await raw.close()

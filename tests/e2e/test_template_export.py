"""One template, one model id: the model id `serve` announces to DPS (seen at the emulator) is the root `@id`
`template export` prints, for the object lists of both real C clients, with the settings' defaults (the
shipped codecs/ directory) — and `template export --device` gives the template a live device announced.

IoT Central assigns a device to the template whose model id it announces and leaves it Unassigned otherwise:
https://learn.microsoft.com/azure/iot-central/core/concepts-device-templates#assign-a-device-to-a-device-template
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiocoap
import pytest

from emulator.app import Emulator
from tests.conftest import REPO, SHARED
from tests.e2e.conftest import STEP, coap_address, eventually, running_translator
from translator.cli import main
from translator.settings import CodecSettings, Settings

# The Register payloads of the two C clients (docs/CLIENTS.md; captured in ../shared/vectors), written here
# so that a clone without ../shared still checks them.
CLIENT_LINKS = {
    "wakaama": '</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</2/0>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,'
    "</31024>;ver=1.0,</31024/10>,</31024/11>,</31024/12>",
    "anjay": "</1/1>,</2>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,</10>;ver=1.1,</10/0>,</11>,</16>,</19>,</20/0>,"
    "</3303/0>,</3313/0>,</3347/0>,</33605>,</33606/0>,</33607/0>,</33608>,</33609/0>",
}


@pytest.fixture
def default_codecs(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Serve's own default codec directory (`codecs`, relative to where it runs), run from the checkout."""
    monkeypatch.chdir(REPO)
    return replace(settings, codec=CodecSettings())


# The 1.2 client registers in queue mode (a bare Q in the query), the 1.1 client does not.
QUEUE_MODE = {"wakaama": False, "anjay": True}


async def _register(server: tuple[str, int], endpoint: str, links: str, queue: bool = False) -> None:
    context = await aiocoap.Context.create_client_context()
    try:
        request = aiocoap.Message(
            code=aiocoap.POST,
            uri=f"coap://{server[0]}:{server[1]}/rd?ep={endpoint}&lt=300&lwm2m=1.1" + ("&Q" if queue else ""),
            payload=links.encode(),
            content_format=40,
        )
        async with asyncio.timeout(STEP):
            response = await context.request(request).response
        assert response.code == aiocoap.CREATED, response
    finally:
        await context.shutdown()


async def _announced(emulator: Emulator, device_id: str) -> str:
    # The model id the device announced, as the emulator recorded it (the REST API's `template` shows only
    # a published template the device was assigned to).
    async def model_id() -> str | None:
        device = emulator.application.device(device_id)
        return device.model_id if device is not None and device.model_id else None

    found: str = await eventually(model_id, what=f"{device_id}'s model id at DPS")
    return found


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["template", "export", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


async def _check_client(
    settings: Settings,
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    name: str,
    links: str,
    *,
    queue: bool = False,
) -> None:
    async with running_translator(settings) as translator:
        endpoint = f"urn:dev:ops:{name}-export"
        await _register(coap_address(translator), endpoint, links, queue)
        announced = await _announced(emulator, endpoint)

        code, template, err = await asyncio.to_thread(_export, capsys, "--objects", links)
        assert code == 0, err
        assert template[0]["@id"] == announced
        assert f"model id: {announced}" in err

        async def from_store() -> bool:
            code, template, err = await asyncio.to_thread(
                _export, capsys, "--device", endpoint, "--state-dir", str(settings.state_dir)
            )
            assert code == 0, err
            assert template[0]["@id"] == announced
            return True

        await eventually(from_store, what="the registration in the store")

        # The device template JSON (the REST API's PUT body): commands of a sleeping device are durable.
        code, template, err = await asyncio.to_thread(
            _export,
            capsys,
            "--device",
            endpoint,
            "--state-dir",
            str(settings.state_dir),
            "--format",
            "template",
        )
        assert code == 0, err
        assert template["@id"] == template["capabilityModel"]["@id"] == announced
        commands = [
            item
            for component in template["capabilityModel"]["contents"]
            if component["@type"] == "Component"
            for item in component["schema"]["contents"]
            if item["@type"] == "Command"
        ]
        assert commands
        assert all(c.get("durable", False) is queue for c in commands), commands


@pytest.mark.parametrize("client", sorted(CLIENT_LINKS))
async def test_export_announces_what_serve_announces(
    default_codecs: Settings, emulator: Emulator, capsys: pytest.CaptureFixture[str], client: str
) -> None:
    await _check_client(
        default_codecs, emulator, capsys, client, CLIENT_LINKS[client], queue=QUEUE_MODE[client]
    )


async def test_export_matches_the_captured_registrations(
    default_codecs: Settings, emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The object lists exactly as captured on the wire (skips in a clone without ../shared)."""
    vectors = SHARED / "vectors" / "lwm2m-wire.jsonl"
    if not vectors.is_file():
        pytest.skip(f"no reference vectors at {vectors}")
    captured: dict[str, str] = {}
    for line in vectors.read_text().splitlines():
        record = json.loads(line)
        if record["op"] == "register" and record["direction"] == "client->server":
            captured.setdefault(record["client"], record["payload_text"])
    assert set(captured) == set(CLIENT_LINKS)
    for client, links in captured.items():
        await _check_client(
            default_codecs, emulator, capsys, f"{client}-wire", links, queue=QUEUE_MODE[client]
        )


async def test_export_of_an_unknown_device_says_so(
    default_codecs: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = await asyncio.to_thread(
        _export, capsys, "--device", "nobody", "--state-dir", str(tmp_path / "state")
    )
    assert code == 2
    assert "nobody: no registration of this device" in err


async def test_a_fleet_model_id_gives_one_template_for_every_object_list(
    default_codecs: Settings,
    emulator: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `codec.model_id`, devices of different object lists announce one model id, and
    `template export --fleet` gives the one template covering all of them (their objects' union)."""
    fleet = "dtmi:example:lwm2mFleet;1"
    settings = replace(default_codecs, codec=replace(default_codecs.codec, model_id=fleet))
    monkeypatch.setenv("IOTC_TRANSLATOR_CODEC_MODEL_ID", fleet)  # the export reads serve's settings
    async with running_translator(settings) as translator:
        for name, links in CLIENT_LINKS.items():
            await _register(coap_address(translator), f"fleet-{name}", links)
            assert await _announced(emulator, f"fleet-{name}") == fleet

        async def exported() -> bool:
            code, template, err = await asyncio.to_thread(
                _export,
                capsys,
                "--fleet",
                "--state-dir",
                str(settings.state_dir),
                "--format",
                "template",
            )
            assert code == 0, err
            assert template["@id"] == fleet
            names = {c["name"] for c in template["capabilityModel"]["contents"] if c["@type"] == "Component"}
            # 3303 only in the 1.2 client's list, 31024 (no model) in neither template; /2 and /7 in both.
            assert {"temperature_0", "accelerometer_0", "location"} <= names, names
            return True

        await eventually(exported, what="both registrations in the store")

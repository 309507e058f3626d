"""`serve` runs on uvloop (settings.event_loop = "auto"), the other tests on asyncio's loop: the translator
and the emulator, end to end, on uvloop.

The trap this guards against: libuv stops polling a socket that reports POLLERR, which a queued ICMP error
does while IP_RECVERR is on (aiocoap turns it on). One device gone from its address — its port
unreachable — would make the CoAP socket deaf for every other device.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from emulator.app import Emulator
from tests.conftest import emulator_config
from tests.e2e.conftest import (
    STEP,
    eventually,
    running_translator,
    session_connected,
    simulated,
    translator_settings,
)
from translator.lwm2m import Path as Lwm2mPath
from translator.serve import loop_factory

uvloop = pytest.importorskip("uvloop", reason="uvloop is a dependency of serve on this platform")

TEMPERATURE = Lwm2mPath.parse("/3303/0/5700")


async def _scenario(state: Path) -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    async with Emulator(emulator_config(state / "emulator")) as emulator:
        settings = translator_settings(emulator, state / "translator")
        async with (
            running_translator(settings) as translator,
            simulated(translator, "uv-1", values={TEMPERATURE: 21.5}) as device,
        ):
            await session_connected(translator, "uv-1")
            first = await device.send([TEMPERATURE])
            assert first.code.is_successful(), first

            # A device that registers and vanishes: the translator's set-up requests to it come back
            # as ICMP port unreachable.
            async with simulated(translator, "uv-gone", values={TEMPERATURE: 1.0}):
                pass
            assert translator.coap is not None
            coap = translator.coap

            async def set_up_ended() -> bool:
                # Its set-up ends once every request to it failed (unreachable or unanswered): any error
                # they caused has reached the socket by then.
                snapshot = coap.snapshot("uv-gone")
                return snapshot is not None and snapshot.settled

            await eventually(set_up_ended, what="uv-gone's set-up to fail")

            device.set_value(TEMPERATURE, 22.5)
            async with asyncio.timeout(STEP):
                second = await device.send([TEMPERATURE])
            assert second.code.is_successful(), second
            assert coap.registration("uv-1") is not None


def test_translator_on_uvloop_survives_an_unreachable_device(tmp_path: Path) -> None:
    factory = loop_factory("auto")
    assert factory is not None, "uvloop is installed, so serve picks it"
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_scenario(tmp_path))

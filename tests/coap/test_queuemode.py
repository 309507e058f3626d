"""Queue mode's decisions: the pure rules, and the sender that decorates the plain one. No socket: the
decorated sender here records what it is asked to send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypeVar, cast

import pytest

from translator.coap import DeviceIdentity, RegistrationStore, parse_query
from translator.coap.errors import (
    DeadlineExpiredError,
    NotRegisteredError,
    RegistrationEndedError,
    ServerRefusedError,
)
from translator.coap.queue import DownlinkQueue, must_hold, should_flush
from translator.coap.queuemode import QueueModeSender
from translator.coap.requests import DownlinkRequest, Read, Write
from translator.coap.settings import CoapSettings
from translator.coap.state import Device, Held
from translator.lwm2m import ObjectRegistry, Path, Record

T = TypeVar("T")
SETTINGS = CoapSettings(queue_window=10.0, queue_deadline=30.0, request_timeout=5.0)
TEMPERATURE = Path(3303, 0, 5700)


def queue(awake_until: float = float("-inf"), held: int = 0) -> DownlinkQueue[str]:
    q = DownlinkQueue[str](window=10.0, awake_until=awake_until)
    for i in range(held):
        q.hold(f"r{i}", 100.0)
    return q


@pytest.mark.parametrize(
    ("queue_mode", "awake", "held", "hold"),
    [
        (False, False, 0, False),  # not queue mode: always sent now
        (False, False, 2, False),
        (True, False, 0, True),  # asleep: wait
        (True, True, 0, False),  # listening, nothing before it: now
        (True, True, 1, True),  # listening, but earlier requests go first
    ],
)
def test_must_hold(queue_mode: bool, awake: bool, held: int, hold: bool) -> None:
    assert must_hold(queue_mode, queue(20.0 if awake else float("-inf"), held), now=10.0) is hold


@pytest.mark.parametrize(
    ("awake", "held", "flushing", "flush"),
    [
        (True, 1, False, True),
        (True, 0, False, False),  # nothing to release
        (False, 1, False, False),  # not listening
        (True, 1, True, False),  # one release at a time
    ],
)
def test_should_flush(awake: bool, held: int, flushing: bool, flush: bool) -> None:
    assert should_flush(queue(20.0 if awake else float("-inf"), held), 10.0, flushing=flushing) is flush


def answer(name: str) -> list[Record]:
    return [Record(Path(), name)]


@dataclass
class Recorder:
    """The decorated sender: records each request and answers a Read with its name as the value."""

    sent: list[tuple[str, float]] = field(default_factory=list)

    async def send(self, dev: Device, request: DownlinkRequest[T], timeout: float) -> T:
        self.sent.append((request.name, timeout))
        return cast("T", answer(request.name))


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def device(endpoint: str, *query: str) -> Device:
    store = RegistrationStore()
    params = parse_query([f"ep={endpoint}", *query])
    reg = store.register(DeviceIdentity.of(endpoint), params, None, ("::1", 5683, 0, 0), 0.0).registration
    return Device(reg, ObjectRegistry.builtin().for_versions({}), DownlinkQueue[Held](SETTINGS.queue_window))


def sender(*devices: Device) -> tuple[QueueModeSender, Recorder, Clock]:
    inner, clock = Recorder(), Clock()
    table = {d.registration.endpoint: d for d in devices}
    return QueueModeSender(inner, settings=SETTINGS, devices=table, clock=clock), inner, clock


async def held(dev: Device, count: int = 1) -> None:
    async with asyncio.timeout(2.0):
        while len(dev.queue) < count:
            await asyncio.sleep(0)  # let the sending task reach its hold


async def test_a_device_without_queue_mode_is_sent_to_at_once() -> None:
    dev = device("plain")
    queue_sender, inner, _ = sender(dev)
    assert await queue_sender.send("plain", Read(TEMPERATURE), timeout=None, deadline=None) == answer(
        "read /3303/0/5700"
    )
    assert inner.sent == [("read /3303/0/5700", SETTINGS.request_timeout)]


async def test_refused_before_the_device_is_looked_up_and_unknown_devices_fail() -> None:
    queue_sender, inner, _ = sender()
    with pytest.raises(ServerRefusedError, match="lifetime"):
        await queue_sender.send(
            "nobody", Write(Path(1, 0), (Record(Path(1, 0, 1), -1),)), timeout=None, deadline=None
        )
    with pytest.raises(NotRegisteredError):
        await queue_sender.send("nobody", Read(TEMPERATURE), timeout=None, deadline=None)
    assert inner.sent == []


async def test_a_sleeping_device_gets_its_requests_in_order_when_it_wakes() -> None:
    dev = device("sleepy", "Q")
    queue_sender, inner, clock = sender(dev)
    first = asyncio.create_task(queue_sender.send("sleepy", Read(Path(3, 0)), timeout=2.0, deadline=None))
    await held(dev)
    second = asyncio.create_task(queue_sender.send("sleepy", Read(TEMPERATURE), timeout=None, deadline=None))
    await held(dev, 2)
    assert inner.sent == []
    queue_sender.wake(dev, clock.now)
    async with asyncio.timeout(2.0):
        assert await first == answer("read /3/0") and await second == answer("read /3303/0/5700")
    assert inner.sent == [("read /3/0", 2.0), ("read /3303/0/5700", SETTINGS.request_timeout)]
    assert len(dev.queue) == 0
    # awake and nothing waits: the next request goes now
    assert await queue_sender.send("sleepy", Read(Path(3)), timeout=None, deadline=None) == answer("read /3")


async def test_a_request_past_its_deadline_fails_without_being_sent() -> None:
    dev = device("sleepy", "Q")
    queue_sender, inner, clock = sender(dev)
    waiting = asyncio.create_task(queue_sender.send("sleepy", Read(TEMPERATURE), timeout=None, deadline=5.0))
    await held(dev)
    clock.now += 4.0
    queue_sender.expire_held(clock.now)
    assert not waiting.done()
    clock.now += 1.0
    queue_sender.expire_held(clock.now)
    with pytest.raises(DeadlineExpiredError, match="before the deadline"):
        async with asyncio.timeout(2.0):
            await waiting
    queue_sender.wake(dev, clock.now)
    assert inner.sent == []


async def test_an_ended_registration_fails_held_requests_unless_a_new_one_takes_them() -> None:
    dev = device("sleepy", "Q")
    queue_sender, inner, _ = sender(dev)
    waiting = asyncio.create_task(queue_sender.send("sleepy", Read(TEMPERATURE), timeout=None, deadline=None))
    await held(dev)
    queue_sender.end(dev, "re-registered", keep_queue=True)
    assert len(dev.queue) == 1 and not waiting.done()
    queue_sender.end(dev, "de-registered", keep_queue=False)
    with pytest.raises(RegistrationEndedError, match="de-registered"):
        async with asyncio.timeout(2.0):
            await waiting
    assert inner.sent == []

"""A device's collaborators with their narrow dependencies (translator/bridge/services.py): the deadlines,
desired-property sync and the command runner. The codecs and the store are the real ones; the downlinks
are a scripted stand-in for the CoAP face's DeviceManager (the end-to-end tests drive the real one), which
the narrow seam makes possible: each collaborator touches only the few calls it is given."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, cast

import pytest

from tests.codec.conftest import REPO
from translator.bridge.commands import CommandRunner
from translator.bridge.desired import DesiredSync
from translator.bridge.services import Deadlines
from translator.coap import DeadlineExpiredError, DeviceManager, DeviceResponseError, Registration
from translator.codec import Codec, DeviceMapper, load_codec
from translator.iotc.protocol.property_bag import METHOD_NAME, PropertyBag
from translator.iotc.protocol.twin import AckCode, JsonObject, desired_properties
from translator.lwm2m import ObjectRegistry, Path, Record
from translator.ops.metrics import Metrics
from translator.store import PendingCommand, SqliteStore

LOG = logging.LoggerAdapter(logging.getLogger("test"), {"device_id": "lamp"})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Device:
    """What a collaborator sees of a device's life (services.DeviceView)."""

    codec: Codec | None
    device_id: str = "lamp"
    endpoint: str = "lamp-ep"
    registration: Registration | None = None
    mapper: DeviceMapper | None = field(init=False)

    def __post_init__(self) -> None:
        self.mapper = DeviceMapper(self.codec, device_id=self.device_id) if self.codec else None


@dataclass
class Downlinks:
    """Scripted answers, in order, for the DeviceManager calls a collaborator makes."""

    answers: list[Any] = field(default_factory=list)
    calls: list[tuple[str, str, object, float]] = field(default_factory=list)

    async def _answer(self, what: str, endpoint: str, target: object, deadline: float) -> Any:
        self.calls.append((what, endpoint, target, deadline))
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def write(self, endpoint: str, path: Path, records: Any, *, deadline: float) -> None:
        await self._answer("write", endpoint, path, deadline)

    async def read(self, endpoint: str, path: Path, *, deadline: float) -> Sequence[Record]:
        return cast(Sequence[Record], await self._answer("read", endpoint, path, deadline) or [])

    async def execute(self, endpoint: str, path: Path, arguments: Any, *, deadline: float) -> None:
        await self._answer("execute", endpoint, path, deadline)


class Tasks:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any]] = []

    def __call__(self, work: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self.tasks.append(task)
        return task

    async def settle(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks), timeout=5)


@pytest.fixture
def light() -> Codec:
    return load_codec(REPO / "codecs" / "3311-light-control.toml", ObjectRegistry.builtin())


@pytest.fixture
def sensor() -> Codec:
    return load_codec(REPO / "codecs" / "3303-temperature.toml", ObjectRegistry.builtin())


def desired_sync(device: Device, downlinks: Downlinks, reports: list[JsonObject]) -> DesiredSync:
    async def report(patch: JsonObject) -> None:
        reports.append(patch)

    return DesiredSync(
        device,
        downlinks=cast(DeviceManager, downlinks),
        deadlines=Deadlines(Clock(), queue=60.0, command=25.0),
        report=report,
        spawn=Tasks(),
        log=LOG,
    )


def test_deadlines_are_points_on_the_clock_and_downlinks_get_the_seconds_left() -> None:
    clock = Clock()
    deadlines = Deadlines(clock, queue=60.0, command=25.0)
    assert deadlines.downlink() == 160.0 and deadlines.for_command() == 125.0
    clock.now = 150.0
    assert deadlines.within(160.0) == 10.0
    assert deadlines.within(120.0) == 0.0  # passed: no time left, never a negative wait


async def test_a_device_without_writable_properties_rejects_each_desired_one() -> None:
    reports: list[JsonObject] = []
    downlinks = Downlinks()
    sync = desired_sync(Device(None), downlinks, reports)
    await sync.apply(desired_properties({"$version": 3, "brightness": 5}))
    assert [r["brightness"]["ac"] for r in reports] == [AckCode.REJECTED]
    assert downlinks.calls == []


async def test_a_desired_property_is_written_to_the_device_with_the_queue_deadline(light: Codec) -> None:
    reports: list[JsonObject] = []
    downlinks = Downlinks()
    sync = desired_sync(Device(light), downlinks, reports)
    await sync.apply(
        desired_properties({"$version": 7, "light": {"__t": "c", "dimmer": 40}}, light.component_names)
    )
    assert downlinks.calls == [("write", "lamp-ep", Path(3311, 0, 5851), 60.0)]
    assert reports == [
        {"light": {"__t": "c", "dimmer": {"value": 40, "ac": 200, "av": 7, "ad": "completed"}}}
    ]


async def test_a_refused_write_is_acknowledged_with_what_the_device_holds(light: Codec) -> None:
    reports: list[JsonObject] = []
    held = [Record(Path(3311, 0, 5851), 10)]
    downlinks = Downlinks([DeviceResponseError("lamp-ep", 0x85), held])  # 4.05, then the read back
    sync = desired_sync(Device(light), downlinks, reports)
    await sync.apply(
        desired_properties({"$version": 8, "light": {"__t": "c", "dimmer": 40}}, light.component_names)
    )
    assert [call[0] for call in downlinks.calls] == ["write", "read"]
    [ack] = reports
    assert ack["light"]["dimmer"]["ac"] == 400 and ack["light"]["dimmer"]["value"] == 10


def command_runner(
    device: Device, downlinks: Downlinks, store: Any = None, clock: Clock | None = None
) -> tuple[CommandRunner, Tasks]:
    tasks = Tasks()
    runner = CommandRunner(
        device,
        downlinks=cast(DeviceManager, downlinks),
        deadlines=Deadlines(clock or Clock(), queue=60.0, command=25.0),
        store=store,
        metrics=Metrics(),
        spawn=tasks,
        log=LOG,
        owns=_always_mine,
    )
    return runner, tasks


async def _always_mine() -> bool:
    return True  # one node: the device is this node's


async def test_a_device_without_a_codec_has_no_commands() -> None:
    runner, _ = command_runner(Device(None), Downlinks())
    status, payload = await runner.run("reboot", None, 125.0)
    assert status == 404 and "no commands" in payload["error"]


async def test_a_command_runs_on_the_device_within_the_seconds_left(sensor: Codec) -> None:
    downlinks = Downlinks()
    clock = Clock()
    runner, _ = command_runner(Device(sensor), downlinks, clock=clock)
    status, _ = await runner.run("temperature*resetMinMax", None, 125.0)
    assert status == 200
    assert downlinks.calls == [("execute", "lamp-ep", Path(3303, 0, 5605), 25.0)]


async def test_a_command_the_device_did_not_take_in_time_answers_504(sensor: Codec) -> None:
    downlinks = Downlinks([DeadlineExpiredError("lamp-ep", "did not wake")])
    runner, _ = command_runner(Device(sensor), downlinks)
    status, _ = await runner.run("temperature*resetMinMax", None, 125.0)
    assert status == 504


async def test_an_offline_command_is_kept_run_and_then_forgotten(sensor: Codec, tmp_path: FilePath) -> None:
    downlinks = Downlinks()
    async with SqliteStore(tmp_path / "s.db") as store:
        runner, tasks = command_runner(Device(sensor), downlinks, store)
        runner.on_c2d(PropertyBag(message_id="m1", custom=((METHOD_NAME, "temperature*resetMinMax"),)), b"")
        await tasks.settle()
        assert [call[0] for call in downlinks.calls] == ["execute"]
        assert await store.commands("lamp") == []


async def test_an_offline_command_kept_across_a_restart_runs_when_the_life_starts_again(
    sensor: Codec, tmp_path: FilePath
) -> None:
    downlinks = Downlinks()
    async with SqliteStore(tmp_path / "s.db") as store:
        now = time.time()
        await store.add_command(
            PendingCommand("m1", "lamp", "temperature*resetMinMax", None, now + 3600, now)
        )
        await store.add_command(
            PendingCommand("m0", "lamp", "temperature*resetMinMax", None, now - 1, now - 90)
        )
        runner, tasks = command_runner(Device(sensor), downlinks, store)
        await runner.resume_offline()
        await tasks.settle()
        assert [call[0] for call in downlinks.calls] == ["execute"]  # the expired one is not run
        assert await store.commands("lamp") == []  # both are gone


async def test_a_cloud_to_device_message_without_a_method_name_is_ignored(sensor: Codec) -> None:
    runner, tasks = command_runner(Device(sensor), Downlinks())
    runner.on_c2d(PropertyBag(message_id="m1"), b"{}")
    assert tasks.tasks == []

"""The supervisor of `serve --workers N`: the embedded emulator (once, here), N worker processes on the
shared ports, a restart with backoff for a worker that dies, SIGTERM passed on to every worker, and the
operations endpoint for them all. Every wait is bounded: a worker that is not ready in `start_timeout` is
killed and counts as a death; one that has not stopped `stop_timeout` after SIGTERM is killed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from translator.private_files import private_dir
from translator.serve import loop_factory
from translator.settings import IotcSettings, Settings
from translator.workers.ops import SupervisorOps, WorkerView
from translator.workers.plan import RestartPolicy, SharedPorts, worker_settings
from translator.workers.protocol import WorkerOrder, WorkerReady, WorkerTemplate, decode_line

if TYPE_CHECKING:
    from emulator.app import Emulator

log = logging.getLogger(__name__)

WORKER_MODULE = "translator.workers.worker"
KILL_WAIT = 5.0  # after SIGKILL, the kernel's part: the process is reaped at once
LINE_LIMIT = 16 * 1024 * 1024  # a worker's template line: a device with many objects makes a big template


class WorkersFailed(Exception):
    """A worker could not start, or kept dying: the supervisor stops and exits non-zero."""


@dataclass(slots=True)
class _Slot:
    index: int
    process: asyncio.subprocess.Process | None = None
    ready: WorkerReady | None = None
    state: str = "starting"
    started: float = 0.0
    deaths: int = 0
    restarts: int = 0
    keeper: asyncio.Task[None] | None = field(default=None, repr=False)
    reader: asyncio.Task[None] | None = field(default=None, repr=False)

    def view(self) -> WorkerView:
        return WorkerView(
            index=self.index,
            state=self.state,
            pid=self.process.pid if self.process is not None else None,
            restarts=self.restarts,
            operations_port=self.ready.operations_port if self.ready is not None else None,
        )


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        policy: RestartPolicy | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.settings = settings
        self.policy = policy or RestartPolicy()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.emulator: Emulator | None = None
        self.ops: SupervisorOps | None = None
        self.ports = SharedPorts.asked(settings)
        self._emulated: IotcSettings | None = None
        self._templates: dict[str, list[dict[str, Any]]] = {}  # built by workers, for the emulator
        self._slots = [_Slot(index) for index in range(settings.workers)]
        self._node_base = settings.store.node_id or _default_node_base()
        self._stopping = False
        self.done = asyncio.Event()  # a stop was asked for, or the workers kept dying
        self.failure: str | None = None

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """The emulator, free ports for those asked as 0, worker 0, the other workers, the operations
        endpoint. Raises WorkersFailed if a worker does not get ready."""
        private_dir(self.settings.state_dir)
        if not self.settings.iotc.configured:
            from translator.bridge import CodecCatalog
            from translator.embedded import start_emulator

            catalog = CodecCatalog.from_settings(self.settings.codec)
            self.emulator, self._emulated = await start_emulator(self.settings, catalog, self._templates)
            # Its hub's HTTPS device API, for the workers' ephemeral devices.
            https = replace(self.settings.ephemeral, hub_https_port=self.emulator.https_port)
            self.settings = replace(self.settings, ephemeral=https)
        self.ports = _free_ports(self.ports, self.settings)
        first, *others = self._slots
        await self._spawn(first)  # alone first: a start-up error (Redis unreachable, say) is told once
        if first.ready is None:
            raise WorkersFailed(f"worker 0 did not start (exit status {_status(first)}); see its log above")
        await asyncio.gather(*(self._spawn(slot) for slot in others))
        failed = [slot.index for slot in others if slot.ready is None]
        if failed:
            raise WorkersFailed(f"workers {failed} did not start; see their logs above")
        loop = asyncio.get_running_loop()
        for slot in self._slots:
            slot.keeper = loop.create_task(self._keep(slot), name=f"worker-{slot.index}-keeper")
        operations = self.settings.operations
        self.ops = SupervisorOps(self.views, host=operations.host, port=operations.port)
        await self.ops.start()

    def request_stop(self) -> None:
        self.done.set()

    async def stop(self) -> None:
        """SIGTERM to every worker; those still running after `stop_timeout` are killed."""
        self._stopping = True
        self.done.set()
        tasks = [task for slot in self._slots for task in (slot.keeper, slot.reader) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        running = [slot for slot in self._slots if slot.process is not None]
        for slot in running:
            _signal(slot, signal.SIGTERM)
        await asyncio.gather(*(self._reap(slot, self.stop_timeout) for slot in running))
        for slot in self._slots:
            slot.state = "stopped"
        if self.ops is not None:
            await self.ops.stop()
            self.ops = None
        if self.emulator is not None:
            await self.emulator.stop()
            self.emulator = None

    # --- workers -----------------------------------------------------------------------------------

    def views(self) -> list[WorkerView]:
        return [slot.view() for slot in self._slots]

    async def _spawn(self, slot: _Slot) -> None:
        """Start the slot's worker and wait (bounded) for its ready line; on failure the process is dead
        and `slot.ready` is None."""
        slot.ready = None
        slot.state = "starting"
        slot.started = time.monotonic()
        order = WorkerOrder(
            slot.index,
            worker_settings(self.settings, slot.index, self.ports, self._node_base),
            self._emulated,
            self.settings.workers,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        slot.process = process
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(order.encode())
            await process.stdin.drain()
            async with asyncio.timeout(self.start_timeout):
                while slot.ready is None:  # templates of restored devices may come first
                    said = decode_line(await process.stdout.readline())
                    if isinstance(said, WorkerReady):
                        slot.ready = said
                    else:
                        self._learn(said)
        except (TimeoutError, ValueError, ConnectionError) as error:
            log.error("worker %d (pid %d) did not get ready: %s", slot.index, process.pid, error or "timeout")
            _signal(slot, signal.SIGKILL)
            await self._reap(slot, KILL_WAIT)
            return
        slot.reader = asyncio.get_running_loop().create_task(
            self._listen(slot.index, process.stdout), name=f"worker-{slot.index}-lines"
        )
        slot.state = "ready"
        log.info("worker %d ready (pid %d, node %s)", slot.index, process.pid, order.settings.store.node_id)

    def _learn(self, template: WorkerTemplate) -> None:
        self._templates[template.model_id] = template.interfaces

    async def _listen(self, index: int, lines: asyncio.StreamReader) -> None:
        """A worker's lines after its ready line (templates), until it exits."""
        while line := await lines.readline():
            try:
                said = decode_line(line)
            except ValueError as error:
                log.warning("worker %d: %s", index, error)
                continue
            if isinstance(said, WorkerTemplate):
                self._learn(said)

    async def _keep(self, slot: _Slot) -> None:
        """Wait for the worker to die, then start it again after the policy's delay — or give up."""
        while True:
            process = slot.process
            assert process is not None
            status = await process.wait()
            ran_for = time.monotonic() - slot.started
            slot.ready = None
            slot.state = "restarting"
            slot.deaths, delay = self.policy.after_death(slot.deaths, ran_for)
            if delay is None:
                self.failure = (
                    f"worker {slot.index} died {slot.deaths} times in a row (last exit status {status}): "
                    "giving up"
                )
                log.error("%s", self.failure)
                self.done.set()
                return
            log.warning(
                "worker %d (pid %d) exited with status %s after %.1f s; restarting in %.1f s",
                slot.index,
                process.pid,
                status,
                ran_for,
                delay,
            )
            await _close_stdin(process)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.done.wait()
            if self._stopping or self.done.is_set():
                return
            slot.restarts += 1
            await self._spawn(slot)

    async def _reap(self, slot: _Slot, timeout: float) -> None:
        process = slot.process
        if process is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await process.wait()
        except TimeoutError:
            log.warning("worker %d (pid %d) did not stop in %.0f s: killed", slot.index, process.pid, timeout)
            _signal(slot, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_WAIT):
                    await process.wait()
        await _close_stdin(process)

    # --- what `serve` prints -----------------------------------------------------------------------

    def how_to_try(self) -> str:
        from translator.embedded import emulator_lines
        from translator.http.server import V1_PATH

        assert self.ops is not None
        pids = ", ".join(str(slot.process.pid) for slot in self._slots if slot.process is not None)
        ports = self.ports
        lines = [
            "iotc-translator is running.",
            f"  workers:           {len(self._slots)} processes (pids {pids}) on one Redis store",
            f"  LwM2M server:      coap://127.0.0.1:{ports.coap}  (register devices here)",
        ]
        first = self._slots[0].ready
        if first is not None and first.dtls_port is not None:
            lines.append(f"  LwM2M over DTLS:   coaps://127.0.0.1:{ports.dtls}  (PSKs: devices import)")
        host = self.settings.operations.host
        lines.append(
            f"  metrics / health:  http://{host}:{self.ops.port}/metrics (summed)  /metrics/workers  /healthz"
        )
        if first is not None and first.http_port is not None:
            http = self.settings.http
            lines.append(f"  HTTP bridge (v1):  http://{http.host}:{ports.http}{V1_PATH}?code=KEY")
        if self.emulator is not None:
            lines += emulator_lines(self.emulator, ports.coap)
        else:
            lines.append(f"  IoT Central:       ID scope {self.settings.iotc.id_scope}")
        return "\n".join(lines)


def _free_port(host: str, kind: socket.SocketKind) -> int:
    """A port nobody holds: bound without SO_REUSEPORT (so exclusively), then released for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        if family == socket.AF_INET6:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _free_ports(ports: SharedPorts, settings: Settings) -> SharedPorts:
    """The ports asked for, with free ones for those asked as 0 ("any")."""
    coap_host = settings.coap.host
    return SharedPorts(
        ports.coap or _free_port(coap_host, socket.SOCK_DGRAM),
        ports.dtls or _free_port(coap_host, socket.SOCK_DGRAM),
        ports.http or _free_port(settings.http.host, socket.SOCK_STREAM),
    )


def _signal(slot: _Slot, signum: signal.Signals) -> None:
    process = slot.process
    if process is not None and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


async def _close_stdin(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None and not process.stdin.is_closing():
        process.stdin.close()
        with contextlib.suppress(ConnectionError):
            await process.stdin.wait_closed()


def _status(slot: _Slot) -> int | None:
    return slot.process.returncode if slot.process is not None else None


def _default_node_base() -> str:
    from translator.cluster.redis_ownership import default_node_id

    return default_node_id()


async def run_supervisor(settings: Settings) -> int:
    supervisor = Supervisor(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, supervisor.request_stop)
    starting = loop.create_task(supervisor.start(), name="workers-start")
    stopped = loop.create_task(supervisor.done.wait(), name="workers-stop-asked")
    try:
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # a stop before every worker was up
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return 0
        try:
            starting.result()
        except WorkersFailed as error:
            log.error("%s", error)
            return 1
        print(supervisor.how_to_try(), flush=True)
        await stopped
        log.info("stopping")
        return 1 if supervisor.failure is not None else 0
    finally:
        stopped.cancel()
        await asyncio.gather(stopped, return_exceptions=True)
        await supervisor.stop()


def supervise(settings: Settings) -> int:
    """`serve` with `workers` > 1: the exit status (non-zero when a worker could not start or kept dying)."""
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        return runner.run(run_supervisor(settings))

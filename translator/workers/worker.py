"""One worker of `serve --workers N`: `python -m translator.workers.worker`, started by the supervisor.

Reads its order (one JSON line) on stdin, runs a translator on the shared ports, reports its ports on
stdout, and stops gracefully on SIGTERM, SIGINT, or when stdin ends (its supervisor is gone: a worker never
outlives it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from translator.codec import export_template
from translator.ops.logs import configure_logging
from translator.serve import Translator, loop_factory
from translator.workers.protocol import WorkerOrder, WorkerReady, WorkerTemplate

log = logging.getLogger("translator.workers.worker")  # not "__main__" when run with -m


class _NameWorker(logging.Filter):
    """`translator.bridge.device[w1] …`: whose line it is, in the supervisor's one stream of logs."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self._suffix = f"[w{index}]"

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.endswith(self._suffix):
            record.name += self._suffix
        return True


class _EndOfInput(asyncio.Protocol):
    def __init__(self, ended: asyncio.Event) -> None:
        self._ended = ended

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended.set()


def _ready_line(translator: Translator) -> bytes:
    coap, ops = translator.coap, translator.ops
    assert coap is not None and ops is not None
    return WorkerReady(
        pid=os.getpid(),
        coap_port=coap.port,
        operations_port=ops.port,
        dtls_port=coap.dtls.port if coap.dtls is not None else None,
        http_port=translator.http.port if translator.http is not None else None,
    ).encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def work(order: WorkerOrder) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    transport, _ = await loop.connect_read_pipe(lambda: _EndOfInput(stop), sys.stdin)
    # The pipe to the supervisor carries our lines only: a stray print goes to the log instead.
    channel = os.dup(1)
    os.dup2(2, 1)
    translator = Translator(
        order.settings, share_ports=True, emulated=order.emulated, quota_nodes=order.workers
    )
    if order.emulated is not None:
        translator.catalog.on_new_codec(
            lambda codec: _write_all(channel, WorkerTemplate(codec.model_id, export_template(codec)).encode())
        )
    try:
        async with translator:
            _write_all(channel, _ready_line(translator))
            await stop.wait()
            log.info("worker %d stopping", order.index)
    finally:
        transport.close()
        os.close(channel)


def main() -> int:
    order = WorkerOrder.decode(sys.stdin.buffer.readline())
    settings = order.settings
    configure_logging(settings.log_level, log_sql=settings.log_sql, log_format=settings.log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NameWorker(order.index))
    runner = asyncio.Runner(loop_factory=loop_factory(settings.event_loop))
    with contextlib.suppress(KeyboardInterrupt), runner:
        runner.run(work(order))
    return 0


if __name__ == "__main__":
    sys.exit(main())

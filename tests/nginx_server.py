"""A real nginx as the UDP balancer in front of translators (issue 17 §8): its own process on a free
loopback port, a generated config, its pid file and logs in a tmp directory (no root needed). Tests skip
when nginx or its stream module is not installed (.ci/run installs nginx-light and libnginx-mod-stream).

The stream block is the one the README recommends: `hash $remote_addr$remote_port consistent` keeps a
device's source address on one backend; replies go back from the balancer's address; after
`proxy_timeout` of silence nginx forgets the mapping (a server-initiated downlink after that is lost)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or next(
    (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(path).exists()), None
)
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
needs_nginx = pytest.mark.skipif(
    NGINX is None or not STREAM_MODULE.exists(),
    reason="nginx with its stream module is not installed (apt nginx-light libnginx-mod-stream)",
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stream_config(
    directory: Path,
    port: int,
    backends: Sequence[tuple[str, int]],
    *,
    proxy_timeout: float,
    proxy_responses: int | None,
    max_fails: int,
    fail_timeout: float,
) -> str:
    servers = "\n".join(
        f"        server {host}:{backend} max_fails={max_fails} fail_timeout={fail_timeout:g}s;"
        for host, backend in backends
    )
    # Unset, proxy_responses lets a CoAP server send any number of datagrams back (notifications, requests
    # to the device) until proxy_timeout; a number ends the session after that many.
    responses = "" if proxy_responses is None else f"        proxy_responses {proxy_responses};\n"
    # `$upstream_addr` in the access log tells a test which backend a client's session went to (written when
    # the session ends).
    return f"""load_module {STREAM_MODULE};
daemon off;
master_process on;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 1024; }}
stream {{
    log_format sessions '$remote_addr:$remote_port $upstream_addr $status $session_time';
    access_log {directory / "access.log"} sessions;
    upstream translators {{
        hash $remote_addr$remote_port consistent;
{servers}
    }}
    server {{
        listen 127.0.0.1:{port} udp;
        proxy_pass translators;
        proxy_timeout {proxy_timeout:g}s;
{responses}    }}
}}
"""


class NginxServer:
    """`async with NginxServer(dir, [backend, ...]) as balancer:` — nginx balancing UDP on
    `balancer.address` over the backends (loopback ports), stopped (SIGQUIT, then SIGKILL) at exit.

    `max_fails`/`fail_timeout` are nginx's passive health check: a backend whose port answers ICMP port
    unreachable (a killed translator) counts a failure, and after `max_fails` of them it is left out for
    `fail_timeout` (its clients hash to the next backend). Measured with nginx 1.22: a client whose session
    (mapping) to the dead backend is still open loses three datagrams — the first is answered by an empty
    datagram (the upstream's recv failed), the second fails the send and ends the session, the third is lost
    — and the fourth goes to the live backend. A CoAP CON gets there on its third retransmission."""

    def __init__(
        self,
        directory: Path,
        backends: Sequence[tuple[str, int]],
        *,
        proxy_timeout: float = 30.0,
        proxy_responses: int | None = None,
        max_fails: int = 1,
        fail_timeout: float = 45.0,  # deploy/nginx-cluster.conf's: a whole CoAP exchange (docs/cluster.md)
    ) -> None:
        self.directory = directory
        self.backends = list(backends)
        self.proxy_timeout = proxy_timeout
        self.proxy_responses = proxy_responses
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self.port = free_udp_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    @property
    def config_path(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    def _write_config(self) -> None:
        self.config_path.write_text(
            stream_config(
                self.directory,
                self.port,
                self.backends,
                proxy_timeout=self.proxy_timeout,
                proxy_responses=self.proxy_responses,
                max_fails=self.max_fails,
                fail_timeout=self.fail_timeout,
            )
        )

    async def start(self) -> None:
        assert NGINX is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        pid_file = self.directory / "nginx.pid"
        pid_file.unlink(missing_ok=True)
        self._write_config()
        self._process = await asyncio.create_subprocess_exec(
            NGINX,
            "-p", str(self.directory),  # prefix: relative paths (temp dirs) stay in tmp
            "-e", str(self.error_log),  # the log before the config is read (default /var/log/nginx)
            "-c", str(self.config_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        # nginx writes its pid file once the config is read and the listening socket bound; it gives no
        # other readiness signal, so poll it (bounded).
        async with asyncio.timeout(10):
            while not pid_file.exists() or not pid_file.read_text().strip():
                if self._process.returncode is not None:
                    log = (
                        self.error_log.read_text(errors="replace")[-2000:] if self.error_log.exists() else ""
                    )
                    raise RuntimeError(f"nginx exited ({self._process.returncode}): {log}")
                await asyncio.sleep(0.02)

    async def reconfigure(self, backends: Sequence[tuple[str, int]]) -> None:
        """A new backend list, loaded by a SIGHUP (graceful: new workers take new sessions)."""
        assert self._process is not None and self._process.returncode is None
        self.backends = list(backends)
        self._write_config()
        self._process.send_signal(signal.SIGHUP)

    def sessions(self) -> list[tuple[str, str]]:
        """(client address, backend address) of every ended session in the access log."""
        if not self.access_log.exists():
            return []
        rows = [line.split() for line in self.access_log.read_text().splitlines()]
        return [(row[0], row[1]) for row in rows if len(row) >= 2]

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        # Fast shutdown: a graceful one (SIGQUIT) waits for every UDP session's proxy_timeout.
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(5):
                await process.wait()
        except TimeoutError:
            process.kill()
            async with asyncio.timeout(5):
                await process.wait()

    async def __aenter__(self) -> NginxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

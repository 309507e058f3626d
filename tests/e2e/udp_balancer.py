"""A UDP balancer for tests, shaped like LVS in direct-routing mode: every backend sees the device's datagrams
from one and the same address (here: the balancer's one upstream socket; with LVS, the device's own), and
whatever a backend sends to that address reaches the device from the balancer's address. `switch(i)` moves
the device's flow to backend i, as a balancer does when a device's source port now hashes elsewhere."""

from __future__ import annotations

import asyncio
from typing import Any


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Any) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # UDP through a balancer drops an unreachable peer's datagrams silently too


class UdpBalancer:
    def __init__(self, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        self.backends = backends
        self.current = 0
        self._host = host
        self._front: asyncio.DatagramTransport | None = None
        self._upstream: asyncio.DatagramTransport | None = None
        self._device: Any = None
        self.address: tuple[str, int] = (host, 0)  # where the device sends to
        self.upstream_port = 0  # the address every backend sees the device at
        self.from_backends: dict[int, int] = {}  # backend index → datagrams it sent to the device

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_device), local_addr=(self._host, 0)
        )
        upstream, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_backend), local_addr=(self._host, 0)
        )
        self._front, self._upstream = front, upstream
        self.address = (self._host, int(front.get_extra_info("sockname")[1]))
        self.upstream_port = int(upstream.get_extra_info("sockname")[1])

    def switch(self, backend: int) -> None:
        self.current = backend

    def _from_device(self, data: bytes, addr: Any) -> None:
        self._device = addr
        if self._upstream is not None:
            self._upstream.sendto(data, self.backends[self.current])

    def _from_backend(self, data: bytes, addr: Any) -> None:
        for index, backend in enumerate(self.backends):
            if addr[1] == backend[1]:
                self.from_backends[index] = self.from_backends.get(index, 0) + 1
        if self._front is not None and self._device is not None:
            self._front.sendto(data, self._device)

    def close(self) -> None:
        for transport in (self._front, self._upstream):
            if transport is not None:
                transport.close()
        self._front = self._upstream = None

    async def __aenter__(self) -> UdpBalancer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

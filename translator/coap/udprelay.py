"""Two UDP sockets in front of a simulated device, the relay helper `NatRelay` and `DtlsRelay` share: the
device sends to the inside socket, the server sees the outside one, and `rebind()` moves the outside port
the way a NAT does when its mapping times out. Subclasses say what crosses in each direction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class _Side(asyncio.DatagramProtocol):
    def __init__(self, receive: Callable[[bytes, Any], None]) -> None:
        self._receive = receive

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._receive(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # an unreachable peer: UDP through a NAT drops it silently too


class UdpRelay:
    def __init__(self, server: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.server = server
        self._host = host
        self._inside: asyncio.DatagramTransport | None = None
        self._outside: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] = (host, 0)  # where the device sends to
        self.public_port = 0  # the source port the server sees

    async def start(self) -> None:
        self._inside, port = await self._open(self._from_device)
        self.address = (self._host, port)
        await self._open_outside()

    async def _open(self, receive: Callable[[bytes, Any], None]) -> tuple[asyncio.DatagramTransport, int]:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Side(receive), local_addr=(self._host, 0)
        )
        return transport, int(transport.get_extra_info("sockname")[1])

    async def _open_outside(self) -> None:
        self._outside, self.public_port = await self._open(self._from_server)
        self._outside_opened()

    def _outside_opened(self) -> None:
        """A new outside port is open (at start and on every rebind)."""

    async def rebind(self) -> int:
        """A new public port; datagrams the server still sends to the old one are lost. Returns it."""
        old, self._outside = self._outside, None
        if old is not None:
            old.close()
        await self._open_outside()
        return self.public_port

    def _from_device(self, data: bytes, addr: Any) -> None:
        raise NotImplementedError

    def _from_server(self, data: bytes, addr: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        for transport in (self._inside, self._outside):
            if transport is not None:
                transport.close()
        self._inside = self._outside = None

"""A NAT in front of a simulated device: the device talks to the relay, the server sees the relay's public
port, and `rebind()` moves that port the way a NAT does when its mapping times out (the device notices
nothing; its observations and location stay as they were)."""

from __future__ import annotations

import asyncio
from typing import Any

from translator.coap.registration import Peer


class _Side(asyncio.DatagramProtocol):
    def __init__(self, relay: NatRelay, inside: bool) -> None:
        self._relay = relay
        self._inside = inside

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._inside:
            self._relay._from_device(data, addr)
        else:
            self._relay._from_server(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # an unreachable peer: UDP through a NAT drops it silently too


class NatRelay:
    def __init__(self, server: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.server = server
        self._host = host
        self._inside: asyncio.DatagramTransport | None = None
        self._outside: asyncio.DatagramTransport | None = None
        self._device: Peer | None = None
        self.address: tuple[str, int] = (host, 0)  # where the device sends to
        self.public_port = 0  # the source port the server sees

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self, True), local_addr=(self._host, 0)
        )
        self._inside = transport
        self.address = (self._host, int(transport.get_extra_info("sockname")[1]))
        await self._open_outside()

    async def _open_outside(self) -> None:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Side(self, False), local_addr=(self._host, 0)
        )
        self._outside = transport
        self.public_port = int(transport.get_extra_info("sockname")[1])

    async def rebind(self) -> int:
        """A new public port; datagrams the server still sends to the old one are lost. Returns it."""
        old, self._outside = self._outside, None
        if old is not None:
            old.close()
        await self._open_outside()
        return self.public_port

    def _from_device(self, data: bytes, addr: Any) -> None:
        self._device = addr
        if self._outside is not None:
            self._outside.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: Any) -> None:
        if self._inside is not None and self._device is not None:
            self._inside.sendto(data, self._device)

    def close(self) -> None:
        for transport in (self._inside, self._outside):
            if transport is not None:
                transport.close()
        self._inside = self._outside = None

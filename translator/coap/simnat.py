"""A NAT in front of a simulated device: the device talks to the relay, the server sees the relay's public
port, and `rebind()` moves that port the way a NAT does when its mapping times out (the device notices
nothing; its observations and location stay as they were)."""

from __future__ import annotations

from typing import Any

from translator.coap.registration import Peer
from translator.coap.udprelay import UdpRelay


class NatRelay(UdpRelay):
    def __init__(self, server: tuple[str, int], host: str = "127.0.0.1") -> None:
        super().__init__(server, host)
        self._device: Peer | None = None

    def _from_device(self, data: bytes, addr: Any) -> None:
        self._device = addr
        if self._outside is not None:
            self._outside.sendto(data, self.server)

    def _from_server(self, data: bytes, addr: Any) -> None:
        if self._inside is not None and self._device is not None:
            self._inside.sendto(data, self._device)

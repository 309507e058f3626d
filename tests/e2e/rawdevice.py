"""A small LwM2M device of the tests' own, on a real UDP socket, sharing no code with the translator: it
registers, sends confirmable SenML Sends carrying a sequence number, and keeps a reading until it is
acknowledged (2.04), retrying on silence, 5.03 (after Max-Age) and 4.04 (after registering again) — what a
device that trusts an acknowledgement does. The acknowledged sequence numbers are what the hub must have."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
from dataclasses import dataclass, field
from typing import Any

CON, NON, ACK, RST = 0, 1, 2, 3
POST = 2
CREATED, CHANGED, NOT_FOUND, SERVICE_UNAVAILABLE = 65, 68, 132, 163
URI_PATH, CONTENT_FORMAT, MAX_AGE, URI_QUERY = 11, 12, 14, 15
SENML_JSON, LINK_FORMAT = 110, 40
TEMPERATURE_LINKS = b"</3303/0>"


def _option_header(delta: int, length: int) -> tuple[int, bytes]:
    def nibble(value: int) -> tuple[int, bytes]:
        if value < 13:
            return value, b""
        if value < 269:
            return 13, bytes((value - 13,))
        return 14, (value - 269).to_bytes(2, "big")

    d, dx = nibble(delta)
    n, nx = nibble(length)
    return (d << 4) | n, dx + nx


def encode(
    header: tuple[int, int, int], token: bytes, options: list[tuple[int, bytes]], payload: bytes
) -> bytes:
    """A CoAP message; `header` is (type, code, message id)."""
    mtype, code, mid = header
    out = bytearray((0x40 | (mtype << 4) | len(token), code))
    out += mid.to_bytes(2, "big") + token
    last = 0
    for number, value in sorted(options, key=lambda option: option[0]):
        first, extra = _option_header(number - last, len(value))
        out.append(first)
        out += extra + value
        last = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


@dataclass
class Reply:
    mtype: int
    code: int
    mid: int
    token: bytes
    options: dict[int, list[bytes]]

    def uint(self, number: int) -> int | None:
        values = self.options.get(number)
        return int.from_bytes(values[0], "big") if values else None


def parse(data: bytes) -> Reply | None:
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    tkl = data[0] & 0x0F
    reply = Reply((data[0] >> 4) & 3, data[1], int.from_bytes(data[2:4], "big"), data[4 : 4 + tkl], {})
    at, number = 4 + tkl, 0
    while at < len(data) and data[at] != 0xFF:
        delta, length = data[at] >> 4, data[at] & 0x0F
        at += 1
        values = []
        for nibble in (delta, length):
            if nibble == 13:
                values.append(data[at] + 13)
                at += 1
            elif nibble == 14:
                values.append(int.from_bytes(data[at : at + 2], "big") + 269)
                at += 2
            else:
                values.append(nibble)
        number += values[0]
        reply.options.setdefault(number, []).append(data[at : at + values[1]])
        at += values[1]
    return reply


class _Socket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = parse(data)
        if reply is not None:
            self.replies.put_nowait(reply)


@dataclass
class Tally:
    acknowledged: list[int] = field(default_factory=list)  # in the order the device got the 2.04s
    refused: dict[int, int] = field(default_factory=dict)  # response code → count
    silent: int = 0  # requests that got no answer at all (the translator was down)
    registrations: int = 0


class RawDevice:
    """One endpoint; `send(n)` returns once reading n is acknowledged (retrying as a device would)."""

    def __init__(self, endpoint: str, server: tuple[str, int], *, attempt_timeout: float = 1.0) -> None:
        self.endpoint = endpoint
        self.server = server
        self.attempt_timeout = attempt_timeout
        self.tally = Tally()
        self._mid = random.randrange(1 << 16)
        self._transport: asyncio.DatagramTransport | None = None
        self._socket: _Socket | None = None
        self._registered = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            _Socket, local_addr=("127.0.0.1", 0), family=socket.AF_INET
        )
        self._transport, self._socket = transport, protocol

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def _exchange(
        self, options: list[tuple[int, bytes]], payload: bytes, *, attempts: int = 3
    ) -> Reply | None:
        """One CON request with its retransmissions (same MID); None if nothing answered."""
        assert self._transport is not None and self._socket is not None
        self._mid = (self._mid + 1) & 0xFFFF
        mid, token = self._mid, os.urandom(4)
        data = encode((CON, POST, mid), token, options, payload)
        for _ in range(attempts):
            self._transport.sendto(data, self.server)
            try:
                async with asyncio.timeout(self.attempt_timeout):
                    while True:
                        reply = await self._socket.replies.get()
                        if reply.mtype == ACK and reply.mid == mid and reply.code:
                            return reply
            except TimeoutError:
                continue
        return None

    async def register(self) -> bool:
        query = [f"ep={self.endpoint}", "lt=300", "lwm2m=1.1", "b=U"]
        options = [(URI_PATH, b"rd"), (CONTENT_FORMAT, bytes((LINK_FORMAT,)))]
        options += [(URI_QUERY, q.encode()) for q in query]
        reply = await self._exchange(options, TEMPERATURE_LINKS)
        self._registered = reply is not None and reply.code == CREATED
        self.tally.registrations += int(self._registered)
        return self._registered

    async def send(self, n: int, *, give_up: float) -> bool:
        """Send reading n (the temperature is n) until acknowledged or `give_up` (loop time) passes."""
        loop = asyncio.get_running_loop()
        payload = json.dumps([{"bn": "/3303/0/", "n": "5700", "v": n}]).encode()
        options = [(URI_PATH, b"dp"), (CONTENT_FORMAT, bytes((SENML_JSON,)))]
        while loop.time() < give_up:
            if not self._registered and not await self.register():
                self.tally.silent += 1
                await asyncio.sleep(0.2)
                continue
            reply = await self._exchange(options, payload)
            if reply is None:
                self.tally.silent += 1
                continue
            if reply.code == CHANGED:
                self.tally.acknowledged.append(n)
                return True
            self.tally.refused[reply.code] = self.tally.refused.get(reply.code, 0) + 1
            if reply.code == NOT_FOUND:
                self._registered = False  # the server forgot us (restarted): register again, at once
            elif reply.code == SERVICE_UNAVAILABLE:
                await asyncio.sleep(min(float(reply.uint(MAX_AGE) or 1), 1.0))
            else:
                await asyncio.sleep(0.2)
        return False

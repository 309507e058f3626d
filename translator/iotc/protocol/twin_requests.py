"""Twin requests in flight, matched to their responses by `$rid`: sans I/O.

A twin GET or reported patch goes out as `$iothub/twin/.../?$rid={rid}` and its answer comes back on
`$iothub/twin/res/{status}/?$rid={rid}` (https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub,
"Retrieving a device twin's properties"). Each request gets a fresh rid on this session; a response is handed
to the waiter that owns its rid, once. The waiter is whatever the shell waits on (an asyncio future there,
anything in tests); when the connection drops, every waiter still open is handed back to be failed, since the
hub answers a request only on the connection that carried it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from translator.iotc.protocol.topics import TwinResponse

W = TypeVar("W")


class TwinRequests(Generic[W]):
    __slots__ = ("_next_rid", "_open")

    def __init__(self) -> None:
        self._next_rid = 0
        self._open: dict[str, W] = {}

    def __len__(self) -> int:
        return len(self._open)

    def open(self, waiter: W) -> str:
        """Register a request about to be published; return the rid to publish it with."""
        self._next_rid += 1
        rid = str(self._next_rid)
        self._open[rid] = waiter
        return rid

    def close(self, rid: str) -> None:
        """Forget a request, answered or abandoned (idempotent)."""
        self._open.pop(rid, None)

    def match(self, response: TwinResponse) -> W | None:
        """The waiter of the request this response answers; None for an unknown or already answered rid."""
        return self._open.pop(response.rid, None)

    def abandon_all(self) -> list[W]:
        """The connection is gone: every open request's waiter, to be failed (each request may be re-sent)."""
        waiters = list(self._open.values())
        self._open.clear()
        return waiters

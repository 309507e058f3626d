"""A node's relay between its CoAP socket and the other nodes (the tap's `Forwarder`, on a RedisRelay).

As a seen-at node: a datagram from an address this node has no registration, exchange or observation for
(or only a registration whose device it released to another node) is looked up once (the seen-at index
names its device, `own:` its owner); while a live other node owns it, the address's datagrams go to that
owner's stream whole, and nothing is answered here — the owner's answer comes back and leaves from this
socket. As the owner: a relayed datagram is handled as if its own socket had read it, and what this node
sends to that address goes back through the node it came through, until the device is heard directly
again. A Register or an Update is always handled where it lands (and claims there):
relay_policy.route_inbound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from translator.cluster.redis_relay import RedisRelay
from translator.cluster.relay_policy import (
    AddressBook,
    Direction,
    Foreign,
    Inbound,
    Peer,
    Relayed,
    Route,
    Routes,
    classify,
    route_inbound,
)
from translator.coap import wire
from translator.coap.hotpath import DatagramTap
from translator.store.base import StoreError

if TYPE_CHECKING:
    from translator.coap.registration import Registration

log = logging.getLogger(__name__)

HELD_PER_ADDRESS = 16  # datagrams kept while their address is looked up (retransmissions, mostly)


class NodeRelay:
    def __init__(
        self,
        relay: RedisRelay,
        tap: DatagramTap,
        registered: Callable[[Peer], bool | None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.relay = relay
        self.node = relay.node
        self._tap = tap
        self._registered = registered
        self.book = AddressBook(relay.policy, clock)
        self.routes = Routes(relay.policy.route_entries)
        self._looking: dict[Peer, list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        relay.on_entry = self._arrived

    async def start(self) -> None:
        await self.relay.start()
        self._tap.forward(self)

    async def stop(self) -> None:
        self._tap.forward(None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.stop()

    # -- Forwarder (called by the tap for every datagram while the cluster runs) ------------------

    def inbound(self, msg: wire.Datagram, data: bytes, peer: Peer, *, known_here: bool) -> bool:
        path = msg.uri_path
        kind = classify(msg.code, path[0] if path else None)
        if kind is Inbound.REGISTRATION:
            self.book.forget(peer)  # handled here, and claims: what the book says of it ends
            return False
        if kind is Inbound.OTHER:
            return False
        here = self._registered(peer)
        if here is False:
            # A registration here whose device another node claimed: its tokens here are stale too, so the
            # datagram goes to the owner whatever this node's tap knows of it.
            known_here = False
        known = self.book.get(peer)
        route = route_inbound(
            kind,
            known_here=known_here or here is True,
            foreign=None if known is None else known.owner is not None,
        )
        if route is Route.LOCAL:
            return False
        if route is Route.RELAY:
            assert known is not None and known.owner is not None
            self._post(known.owner, Direction.TO_OWNER, peer, data)
            return True
        held = self._looking.get(peer)
        if held is not None:
            if len(held) < HELD_PER_ADDRESS:
                held.append(data)
            return True
        self._looking[peer] = [data]
        task = asyncio.get_running_loop().create_task(self._look_up(peer), name="relay-lookup")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def outbound(self, data: bytes, peer: Peer) -> bool:
        node = self.routes.via(peer)
        if node is None:
            return False
        self._post(node, Direction.TO_DEVICE, peer, data)
        return True

    def heard(self, peer: Peer) -> None:
        self.routes.heard_directly(peer)

    # -- the relay's two directions -------------------------------------------------------------

    def _post(self, node: str, direction: Direction, peer: Peer, data: bytes) -> None:
        self.relay.post(node, Relayed(direction, self.node, peer, data))

    async def _look_up(self, peer: Peer) -> None:
        try:
            found: Foreign | None = await self.relay.lookup(peer)
        except StoreError as error:
            log.warning("relay: owner of %s not looked up: %s", peer[:2], error)
            found = None  # not remembered: asked again at the next datagram
        held = self._looking.pop(peer, [])
        if found is not None:
            self.book.put(peer, found)
        owner = found.owner if found is not None else None
        if found is not None and owner is not None:
            log.info("relay: datagrams of %s from %s go to its owner %s", found.device, peer[:2], owner)
        for data in held:
            if owner is not None:
                self._post(owner, Direction.TO_OWNER, peer, data)
            else:
                self._tap.relayed_received(data, peer)

    def _arrived(self, entry: Relayed) -> None:
        if entry.direction is Direction.TO_OWNER:
            self.routes.learned(entry.peer, entry.sender)
            self._tap.relayed_received(entry.data, entry.peer)
        else:
            self._tap.send_here(entry.data, entry.peer)

    # -- the seen-at index ------------------------------------------------------------------------

    async def seen(self, registration: Registration) -> None:
        """A Register/Update of the device reached this node from its address (written then only)."""
        try:
            await self.relay.seen(registration.device_id, registration.peer, registration.lifetime)
        except StoreError as error:
            log.warning("device %s: seen-at not written: %s", registration.device_id, error)

"""Ownership for `serve`: on when the store is Redis (several translators may share it), off with SQLite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from translator.cluster.ownership import HeartbeatPolicy

if TYPE_CHECKING:
    from translator.cluster.node_relay import NodeRelay
    from translator.cluster.quota_share import QuotaShare
    from translator.cluster.redis_ownership import RedisOwnership
    from translator.cluster.relay_policy import Peer
    from translator.cluster.sweeper import OrphanSweeper
    from translator.coap import Lwm2mServer
    from translator.coap.registration import RegistrationStore
    from translator.iotc.client.pacer import FleetPacing
    from translator.settings import StoreSettings
    from translator.store import Store


def ownership_for(store: Store, settings: StoreSettings) -> RedisOwnership | None:
    """This node's ownership on the store's Redis connection, not yet started; None for SQLite."""
    if not settings.redis_url:
        return None
    from translator.cluster.redis_ownership import RedisOwnership, default_node_id
    from translator.store.redis_store import RedisStore

    assert isinstance(store, RedisStore)
    return RedisOwnership(
        store.redis,
        settings.node_id or default_node_id(),
        prefix=settings.redis_prefix,
        heartbeat=HeartbeatPolicy(ttl=settings.heartbeat_ttl),
    )


def relay_for(ownership: RedisOwnership | None, coap: Lwm2mServer) -> NodeRelay | None:
    """The node's relay on the ownership's Redis (the same node id), not yet started; None for SQLite."""
    if ownership is None:
        return None
    from translator.cluster.node_relay import NodeRelay
    from translator.cluster.redis_relay import RedisRelay

    return NodeRelay(
        RedisRelay(ownership.redis, ownership.node, prefix=ownership.prefix),
        coap.tap,
        held_here(coap.store, ownership),
    )


def held_here(registrations: RegistrationStore, ownership: RedisOwnership) -> Callable[[Peer], bool | None]:
    """Whether an address's datagrams are this node's: None when no registration here has the address,
    False when one has but its device is no longer this node's (released when another node claimed it, its
    registration here not expired yet), True otherwise. A released device's datagrams go to its owner: handled
    here they would start a session without a claim and close the owner's hub connection (a bounce per
    datagram). Answered from memory (`held`): no Redis round trip per datagram (§5)."""

    def here(peer: Peer) -> bool | None:
        registration = registrations.by_peer(peer)
        if registration is None:
            return None
        return ownership.held(registration.device_id) is not None

    return here


def quota_share_for(
    ownership: RedisOwnership | None, pacing: FleetPacing, *, at_least: int = 1
) -> QuotaShare | None:
    """The pacers' share of the application's quotas among the live nodes (at least `at_least` of them),
    not yet started; None for a translator alone on SQLite."""
    if ownership is None:
        return None
    from translator.cluster.quota_share import QuotaShare

    return QuotaShare(ownership.nodes_alive, pacing, interval=ownership.heartbeat.interval, at_least=at_least)


def sweeper_for(
    ownership: RedisOwnership | None, adopt: Callable[[set[str]], Awaitable[None]]
) -> OrphanSweeper | None:
    """The node's sweeper for dead owners' devices, started (one sweep per heartbeat TTL, jittered); None
    for SQLite."""
    if ownership is None:
        return None
    from translator.cluster.sweeper import OrphanSweeper

    sweeper = OrphanSweeper(ownership, adopt)
    sweeper.start()
    return sweeper

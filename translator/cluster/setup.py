"""Ownership for `serve`: on when the store is Redis (several translators may share it), off with SQLite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from translator.cluster.ownership import HeartbeatPolicy

if TYPE_CHECKING:
    from translator.cluster.node_relay import NodeRelay
    from translator.cluster.redis_ownership import RedisOwnership
    from translator.coap import Lwm2mServer
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

    registrations = coap.store
    return NodeRelay(
        RedisRelay(ownership.redis, ownership.node, prefix=ownership.prefix),
        coap.tap,
        lambda peer: registrations.by_peer(peer) is not None,
    )

"""Decisions of the supervisor, without I/O: each worker's settings, and whether a worker that died is
started again (and after how long) or the supervisor gives up."""

from __future__ import annotations

from dataclasses import dataclass, replace

from translator.settings import OperationsSettings, Settings


@dataclass(frozen=True, slots=True)
class SharedPorts:
    """The ports every worker binds. Zero in the settings means "any": the supervisor picks a free one
    first (workers/supervisor.py), since a port-0 bind with SO_REUSEPORT may be handed a port another
    SO_REUSEPORT socket of the same user holds — the workers would share it with a stranger."""

    coap: int
    dtls: int
    http: int

    @classmethod
    def asked(cls, settings: Settings) -> SharedPorts:
        return cls(settings.coap.port, settings.coap.dtls_port, settings.http.port)


def worker_settings(settings: Settings, index: int, ports: SharedPorts, node_base: str) -> Settings:
    """Worker `index`'s settings: the shared ports, a private operations endpoint on loopback (the
    supervisor's serves them all), and its own cluster node id. The id is the same across the worker's
    restarts, so a restarted worker takes back at once the devices it owned (docs/cluster.md: a node
    restarted under its id within the heartbeat TTL). The quotas stay whole here: each worker, as any
    cluster node, shares them among the live nodes (translator/cluster/quota_share.py), and never takes more
    than 1/N (its order's `workers`), even while its siblings are still starting."""
    return replace(
        settings,
        workers=1,
        coap=replace(settings.coap, port=ports.coap, dtls_port=ports.dtls),
        http=replace(settings.http, port=ports.http),
        operations=OperationsSettings(host="127.0.0.1", port=0),
        store=replace(settings.store, node_id=f"{node_base}-w{index}"),
        # One gateway device per process: two sessions of one device id would drop each other at the hub.
        gateway=replace(settings.gateway, device_id=f"{settings.gateway.device_id}-w{index}"),
    )


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """A worker that dies is started again after `base` × 2^(deaths − 1) seconds, at most `cap`; one that
    ran `stable_after` seconds starts counting again. `max_deaths` quick deaths in a row: the supervisor
    stops everything and exits non-zero (a worker that cannot live — Redis gone, a bug at start — must not
    be restarted forever while the service looks up)."""

    base: float = 0.5
    cap: float = 10.0
    stable_after: float = 30.0
    max_deaths: int = 5

    def after_death(self, deaths: int, ran_for: float) -> tuple[int, float | None]:
        """Deaths in a row counting this one, and the delay before the restart; None: give up."""
        deaths = 1 if ran_for >= self.stable_after else deaths + 1
        if deaths > self.max_deaths:
            return deaths, None
        return deaths, min(self.cap, self.base * 2 ** (deaths - 1))

"""Notification receive: a datagram on one of our observation tokens (from the hot path) becomes NOTIFY
records for the sink, or an RST when the observation is gone.

A confirmable notification is acknowledged only once the sink has its records safe (the responder
waits); a sink that pushes back gets no ACK, so the device retransmits. Stale notifications (RFC 7641
§3.4 ordering, observe.py) and undecodable ones are acknowledged and dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from translator.coap import wire
from translator.coap.background import Background
from translator.coap.dedup import DedupCache
from translator.coap.errors import BackPressure
from translator.coap.hotpath import DatagramTap
from translator.coap.observations import ObservationService
from translator.coap.registration import Peer
from translator.coap.responder import Responder
from translator.coap.settings import CoapSettings
from translator.coap.sink import TelemetrySink, TelemetrySource
from translator.coap.state import Device, Observation
from translator.lwm2m import Lwm2mFormatError, Record, decode
from translator.ops.logs import device_log

log = logging.getLogger(__name__)


class NotificationReceiver:
    def __init__(
        self,
        *,
        settings: CoapSettings,
        sink: TelemetrySink,
        devices: Mapping[str, Device],
        tap: DatagramTap,
        dedup: DedupCache,
        responder: Responder,
        observations: ObservationService,
        background: Background,
        wake: Callable[[Device, float], None],
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._devices = devices
        self._tap = tap
        self._dedup = dedup
        self._responder = responder
        self._observations = observations
        self._background = background
        self._wake = wake  # queue mode: a device that notifies listens now
        self._clock = clock
        self._wallclock = wallclock

    def deliver(self, dev: Device, records: Sequence[Record]) -> None:
        """Hand records of a response (first observe answer) to the sink, not waiting."""
        if not records:
            return
        try:
            result = self._sink.on_records(
                dev.registration.identity, records, TelemetrySource.NOTIFY, confirmable=False
            )
        except Exception:
            device_log(log, dev.registration.device_id).exception(
                "endpoint=%s: sink refused records", dev.registration.endpoint
            )
            return
        if isinstance(result, Awaitable):
            self._background.adopt(result)

    def notification(self, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None, obs: Observation) -> None:
        """A notification on one of our tokens (hot path)."""
        con = msg.mtype == wire.CON
        dev = self._devices.get(obs.endpoint)
        if obs.cancelled or dev is None or dev.registration.reg_id != obs.reg_id:
            self._tap.forget_token(obs.token)
            self._tap.send(wire.encode(wire.RST, 0, msg.mid, b""), peer)
            return
        if con:
            cached = self._dedup.check(peer, msg.mid, self._clock())
            if cached is not None:
                if cached:
                    self._tap.send(cached, peer, pktinfo)
                return
        now = self._clock()
        self._wake(dev, now)
        if not 64 <= msg.code < 96:
            device_log(log, dev.registration.device_id).info(
                "endpoint=%s: observation %s ended by the device (%s)",
                obs.endpoint,
                ",".join(map(str, obs.paths)),
                msg.code,
            )
            self._observations.ended_by_device(dev, obs)
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        if not obs.seq.accept(msg.observe, now):
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        self._forward(dev, obs, msg, peer, pktinfo)

    def _forward(
        self, dev: Device, obs: Observation, msg: wire.Datagram, peer: Peer, pktinfo: bytes | None
    ) -> None:
        con = msg.mtype == wire.CON
        cf = msg.content_format if msg.content_format is not None else obs.content_format
        try:
            records = decode(
                cf,
                msg.payload,
                base_path=obs.base,
                registry=dev.lookup,
                now=self._wallclock(),
                max_payload=self._settings.max_payload,
            )
        except Lwm2mFormatError as exc:
            device_log(log, dev.registration.device_id).warning(
                "endpoint=%s: undecodable notification (%s)", obs.endpoint, exc.reason
            )
            self._responder.notification_done(msg, peer, pktinfo, True)
            return
        try:
            result = self._sink.on_records(
                dev.registration.identity, records, TelemetrySource.NOTIFY, confirmable=con
            )
        except BackPressure:
            self._responder.notification_done(msg, peer, pktinfo, False)  # no ACK: the device retransmits
            return
        except Exception:
            device_log(log, dev.registration.device_id).exception(
                "endpoint=%s: sink failed on a notification", obs.endpoint
            )
            self._responder.notification_done(msg, peer, pktinfo, False)
            return
        if not con:
            if isinstance(result, Awaitable):
                self._background.adopt(result)
            return
        self._responder.await_sink(result, msg, peer, pktinfo, notification=True)

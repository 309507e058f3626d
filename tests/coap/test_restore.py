"""A restarted CoAP face takes its registrations and observations back (snapshots), and a notification
from a new address moves the registration there (NAT rebinding). Real UDP, the simulator as the device."""

from __future__ import annotations

from dataclasses import replace

from aiocoap.numbers.codes import Code as AioCode

from tests.coap.conftest import FAST
from tests.coap.support import RecordingSink, wait_until
from translator.coap import Lwm2mServer, TelemetrySource
from translator.coap.identity import DeviceIdentity
from translator.coap.registration import RegisterParams, RegistrationStore
from translator.coap.simulator import SimulatedDevice, SimulatorOptions
from translator.coap.snapshot import (
    RegistrationSnapshot,
    expiry_wallclock,
    from_document,
    plan_restore,
    to_document,
)
from translator.lwm2m import Path, Record

TEMPERATURE = Path(3303, 0, 5700)


class MemoryJournal:
    """What a store would keep: the latest snapshot document of every endpoint."""

    def __init__(self) -> None:
        self.server: Lwm2mServer | None = None
        self.documents: dict[str, tuple[str, dict[str, object]]] = {}

    def changed(self, endpoint: str) -> None:
        assert self.server is not None
        snapshot = self.server.snapshot(endpoint)
        if snapshot is None:
            self.documents.pop(endpoint, None)
        else:
            self.documents[endpoint] = (snapshot.registration.device_id, to_document(snapshot))

    def snapshots(self, server: Lwm2mServer) -> list[RegistrationSnapshot]:
        plan = plan_restore(
            ((ep, dev, doc) for ep, (dev, doc) in self.documents.items()),
            grace=server.settings.grace,
            now=server._clock(),
            wall_now=server._wallclock(),
        )
        return list(plan.restore)


async def _server(sink: RecordingSink, journal: MemoryJournal, port: int = 0) -> Lwm2mServer:
    server = Lwm2mServer(replace(FAST, port=port), sink, journal=journal)
    journal.server = server
    return server


async def test_restart_restores_registration_and_observations() -> None:
    journal, sink = MemoryJournal(), RecordingSink()
    first = await _server(sink, journal)
    await first.start()
    port = first.port
    device = SimulatedDevice(
        "rs-coap", first.address, options=SimulatorOptions(cancel_observation_on_rst=True)
    )
    await device.start()
    try:
        assert (await device.register()).code == AioCode.CREATED
        await first.devices.observe("rs-coap", TEMPERATURE)
        registration = first.registration("rs-coap")
        assert registration is not None
        first.devices.settle("rs-coap", "not-its-id")  # a set-up of a replaced registration: ignored
        assert journal.documents["rs-coap"][1]["settled"] is False
        first.devices.settle("rs-coap", registration.reg_id)
        requests = device.requests_received
        await first.stop()

        sink2 = RecordingSink()
        second = await _server(sink2, journal, port)
        taken = second.restore(journal.snapshots(second))
        assert [(s.registration.endpoint, s.settled) for s in taken] == [("rs-coap", True)]
        await second.start()
        try:
            # The device notifies on its old token: telemetry, not RST (which would end the observation).
            device.set_value(TEMPERATURE, 30.5)
            await wait_until(
                lambda: Record(TEMPERATURE, 30.5) in sink2.records(TelemetrySource.NOTIFY),
                what="notification on a restored token",
            )
            assert not device.cancelled_by_rst
            assert (await device.update()).code == AioCode.CHANGED  # same rd/<id>
            assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED  # from the restored address
            assert device.requests_received == requests  # nothing was asked of the device
            assert second.registrations_total == 0
            assert second.devices.observations("rs-coap") == [(TEMPERATURE,)]
        finally:
            await second.stop()
    finally:
        await device.close()


async def test_notification_from_a_new_address_moves_the_registration() -> None:
    journal, sink = MemoryJournal(), RecordingSink()
    server = await _server(sink, journal)
    await server.start()
    device = SimulatedDevice("nat-coap", server.address, options=SimulatorOptions(nat=True))
    await device.start()
    try:
        assert (await device.register()).code == AioCode.CREATED
        await server.devices.observe("nat-coap", TEMPERATURE)
        before = server.registration("nat-coap")
        assert before is not None
        new_port = await device.rebind()
        assert before.peer[1] != new_port

        # A Send is the first thing from the new address: nothing identifies it (no DTLS), so 4.04.
        refused = await device.send([TEMPERATURE])
        assert refused.code == AioCode.NOT_FOUND

        device.set_value(TEMPERATURE, 31.0)
        await wait_until(
            lambda: Record(TEMPERATURE, 31.0) in sink.records(TelemetrySource.NOTIFY), what="notification"
        )
        moved = server.registration("nat-coap")
        assert moved is not None and moved.peer[1] == new_port and moved.reg_id == before.reg_id
        assert sink.updated[-1].peer[1] == new_port
        assert journal.documents["nat-coap"][1]["peer"] == list(moved.peer)  # kept for a restart
        # Downlinks follow the device, and so does its Send.
        assert await server.devices.read("nat-coap", Path(3, 0, 9), timeout=3.0) == [
            Record(Path(3, 0, 9), 100)
        ]
        assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED
    finally:
        await device.close()
        await server.stop()


async def test_restore_carries_the_remaining_lifetime_and_drops_expired() -> None:
    journal, sink = MemoryJournal(), RecordingSink()
    server = await _server(sink, journal)
    await server.start()
    device = SimulatedDevice("life-coap", server.address, options=SimulatorOptions(lifetime=120))
    await device.start()
    try:
        await device.register()
        _, document = journal.documents["life-coap"]
        wall = server._wallclock()
        assert 118 <= float(document["expires"]) - wall <= 120  # type: ignore[arg-type]
    finally:
        await device.close()
        await server.stop()
    # Ten seconds later, on another process's monotonic clock: 110 s left.
    restored = from_document("life-coap", "life-coap", document, now=5000.0, wall_now=wall + 10)
    assert 5000 + 108 <= restored.registration.expires_at(0.0) <= 5000 + 110
    # Expired during the outage (lifetime + grace passed): deleted, not restored.
    plan = plan_restore(
        [("life-coap", "life-coap", document), ("old", "old", {"lifetime": 60, "objects": {}})],
        grace=30.0,
        now=0.0,
        wall_now=wall + 151,
    )
    assert plan.restore == () and set(plan.delete) == {"life-coap", "old"}
    plan = plan_restore([("life-coap", "life-coap", document)], grace=30.0, now=0.0, wall_now=wall + 100)
    assert [s.registration.endpoint for s in plan.restore] == ["life-coap"]


def test_an_infinite_lifetime_is_restored_with_its_bound() -> None:
    """Lifetime 0 ("infinite") lives `unbounded` seconds past its last update; a restart keeps that."""
    document = {
        "format": 2,
        "reg_id": "inf1",
        "peer": ["127.0.0.1", 40000],
        "lifetime": 0,
        "version": "1.1",
        "binding": "U",
        "queue_mode": False,
        "links": "</3303/0>",
        "expires": 1000.0 + 3600.0,  # written at wall 1000 with unbounded = 3600
        "observations": [],
    }
    snapshot = from_document("inf", "inf", document, now=50.0, wall_now=1100.0, unbounded=3600.0)
    assert snapshot.registration.expires_at(0.0, 3600.0) == 50.0 + 3500.0
    again = expiry_wallclock(snapshot.registration, now=50.0, wall_now=1100.0, unbounded=3600.0)
    assert again == document["expires"]
    plan = plan_restore([("inf", "inf", document)], grace=0.0, now=0.0, wall_now=1200.0, unbounded=3600.0)
    assert [s.registration.lifetime for s in plan.restore] == [0]


def test_restored_ids_are_never_handed_out_again() -> None:
    document = {
        "format": 2,
        "reg_id": "abc1",
        "peer": ["127.0.0.1", 40000],
        "lifetime": 300,
        "version": "1.1",
        "binding": "U",
        "queue_mode": False,
        "links": "</3303/0>",
        "expires": 1000.0,
        "observations": [],
    }
    snapshot = from_document("a", "a", document, now=0.0, wall_now=900.0)
    ids = iter(["abc1", "abc2"])
    store = RegistrationStore(new_id=lambda: next(ids))
    assert store.restore(snapshot.registration) is not None
    assert store.restore(snapshot.registration) is None  # the endpoint is taken
    other = store.register(DeviceIdentity.of("b"), RegisterParams(lifetime=60), None, ("::1", 1), 0.0)
    assert other.registration.reg_id == "abc2"  # abc1 belongs to the restored registration
    assert snapshot.registration.objects.instances == (Path(3303, 0),)


async def test_a_dtls_registration_survives_a_restart_and_a_new_handshake() -> None:
    """The registration is keyed by the identity's virtual address, which a restart recomputes: after the
    device's new handshake its notifications, Update and Send reach the restored registration."""
    from translator.coap.credentials import MemoryCredentials, PskCredential

    key = b"restore-psk-0123456789"
    credentials = MemoryCredentials([PskCredential("id-rs", key, "rs-dtls")])
    journal, sink = MemoryJournal(), RecordingSink()
    first = Lwm2mServer(replace(FAST, dtls_port=0), sink, journal=journal, credentials=credentials)
    journal.server = first
    await first.start()
    assert first.dtls is not None
    dtls_port = first.dtls.port
    device = SimulatedDevice(
        "rs-dtls", ("127.0.0.1", dtls_port), options=SimulatorOptions(psk=("id-rs", key))
    )
    await device.start()
    try:
        assert (await device.register()).code == AioCode.CREATED
        await first.devices.observe("rs-dtls", TEMPERATURE)
        registration = first.registration("rs-dtls")
        assert registration is not None
        first.devices.settle("rs-dtls", registration.reg_id)
        await first.stop()

        sink2 = RecordingSink()
        second = Lwm2mServer(
            replace(FAST, dtls_port=dtls_port), sink2, journal=journal, credentials=credentials
        )
        journal.server = second
        assert [s.registration.endpoint for s in second.restore(journal.snapshots(second))] == ["rs-dtls"]
        await second.start()
        try:
            await device.rebind()  # the server forgot the session: the device makes a new handshake
            device.set_value(TEMPERATURE, 31.5)
            await wait_until(
                lambda: Record(TEMPERATURE, 31.5) in sink2.records(TelemetrySource.NOTIFY),
                what="notification on a restored token over a new session",
            )
            assert (await device.update()).code == AioCode.CHANGED
            assert (await device.send([TEMPERATURE])).code == AioCode.CHANGED
            assert second.registrations_total == 0
        finally:
            await second.stop()
    finally:
        await device.close()

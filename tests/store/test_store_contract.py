"""The store contract, on SQLite and on a real redis-server: durable across reopen, ordered outbox with
bounds, registrations, commands, imported devices and DTLS keys."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.store.conftest import StoreFactory
from translator.store import (
    DeviceEntry,
    HubAssignment,
    OutboxFullError,
    PendingCommand,
    PskEntry,
    RegistrationRecord,
)
from translator.store.factory import opened


async def test_everything_survives_a_reopen(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        await store.put_assignment(
            "dev-1", HubAssignment("hub-a.azure-devices.net", "dev-1", "initialAssignment")
        )
        await store.put_assignment(
            "urn:imei:359000000000001",
            HubAssignment("hub-a.azure-devices.net", "urn:imei:359000000000001", None, "gw-1"),
        )
        await store.save_registration(
            RegistrationRecord("ep-1", "dev-1", {"lifetime": 300, "objects": {"3": "1.1"}}, 1.0)
        )
        await store.outbox_append(
            "dev-1", b'{"t": 1}', component="c", creation_time=1700000000.5, properties={"k": "v"}
        )
        await store.add_command(
            PendingCommand("cmd-1", "dev-1", "reboot", {"delay": 1}, time.time() + 60, time.time())
        )
        await store.put_device(
            DeviceEntry(
                "dev-1",
                "ep-1",
                codec="codecs/x.toml",
                symmetric_key="a2V5",
                attributes=(("site", "Lyon"), ("customer", "Contoso")),
            )
        )
    async with opened(new_store()) as store:
        assert await store.get_assignment("dev-1") == HubAssignment(
            "hub-a.azure-devices.net", "dev-1", "initialAssignment"
        )
        downstream = await store.get_assignment("urn:imei:359000000000001")
        assert downstream is not None and downstream.gateway_id == "gw-1"
        [registration] = await store.registrations()
        assert registration.data == {"lifetime": 300, "objects": {"3": "1.1"}}
        [message] = await store.outbox_peek("dev-1")
        assert (message.payload, message.component, message.creation_time, message.properties) == (
            b'{"t": 1}',
            "c",
            1700000000.5,
            {"k": "v"},
        )
        assert await store.outbox_depth() == 1
        [command] = await store.commands("dev-1")
        assert command.payload == {"delay": 1}
        assert (await store.device_for_endpoint("ep-1")) == DeviceEntry(
            "dev-1",
            "ep-1",
            "codecs/x.toml",
            None,
            "a2V5",
            attributes=(("site", "Lyon"), ("customer", "Contoso")),
        )
        await store.forget_assignment("dev-1")
        assert await store.get_assignment("dev-1") is None


async def test_outbox_keeps_order_per_device_and_removes(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        # Concurrent appends share commits but keep their order of arrival.
        sequences = await asyncio.gather(
            *(store.outbox_append(f"dev-{i % 2}", str(i).encode()) for i in range(200))
        )
        assert sequences == sorted(sequences)
        first = await store.outbox_peek("dev-0", limit=50)
        assert [m.payload for m in first] == [str(i).encode() for i in range(0, 100, 2)]
        await store.outbox_remove([m.sequence for m in first])
        assert await store.outbox_depth("dev-0") == 50
        assert await store.outbox_depth() == 150
        assert await store.outbox_devices() == ["dev-0", "dev-1"]


async def test_outbox_bounds_refuse_with_retry_after(new_store: StoreFactory) -> None:
    async with opened(new_store(outbox_limit=5, outbox_device_limit=3, full_retry_after=30)) as store:
        for index in range(3):
            await store.outbox_append("a", bytes([index]))
        with pytest.raises(OutboxFullError) as caught:
            await store.outbox_append("a", b"x")
        assert caught.value.retry_after == 30
        await store.outbox_append("b", b"1")
        await store.outbox_append("b", b"2")
        with pytest.raises(OutboxFullError):
            await store.outbox_append("c", b"over the total bound")
        # Bounds hold after a reopen.
    async with opened(new_store(outbox_limit=5, outbox_device_limit=3)) as store:
        assert await store.outbox_depth() == 5
        with pytest.raises(OutboxFullError):
            await store.outbox_append("c", b"still full")


async def test_psk_per_endpoint_replaced_and_removed(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        await store.put_psk(PskEntry("id-1", "dev1", b"k" * 16))
        assert await store.psk_for_identity("id-1") == PskEntry("id-1", "dev1", b"k" * 16)
        await store.put_psk(PskEntry("id-1b", "dev1", b"j" * 16))  # a new identity for the endpoint
        assert await store.psk_for_identity("id-1") is None
        entry = await store.psk_for_endpoint("dev1")
        assert entry is not None and entry.identity == "id-1b" and "j" not in repr(entry)
        await store.remove_psk("dev1")
        assert await store.psk_for_endpoint("dev1") is None


async def test_registrations_saved_replaced_and_deleted_together(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        await store.write_registrations(
            [RegistrationRecord(f"ep-{n}", f"dev-{n}", {"n": n}, float(n)) for n in range(3)], []
        )
        await store.write_registrations([RegistrationRecord("ep-1", "dev-1", {"n": 10}, 10.0)], ["ep-0"])
        await store.delete_registration("ep-2")
        await store.save_registration(RegistrationRecord("ep-3", "dev-3", {}, 3.0))
    async with opened(new_store()) as store:
        records = sorted(await store.registrations(), key=lambda r: r.endpoint)
        assert [(r.endpoint, r.device_id, r.data, r.updated) for r in records] == [
            ("ep-1", "dev-1", {"n": 10}, 10.0),
            ("ep-3", "dev-3", {}, 3.0),
        ]


async def test_commands_in_creation_order_per_device_and_removed(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        now = time.time()
        await store.add_command(PendingCommand("c2", "dev-1", "b", [1, "x"], now + 60, now + 2))
        await store.add_command(PendingCommand("c1", "dev-1", "a", None, now + 60, now + 1))
        await store.add_command(PendingCommand("c3", "dev-2", "c", {"k": 1}, now + 60, now))
        assert [c.command_id for c in await store.commands("dev-1")] == ["c1", "c2"]
        await store.remove_command("c1")
        await store.remove_command("never-added")
        [left] = await store.commands("dev-1")
        assert (left.name, left.payload) == ("b", [1, "x"])
        assert [c.payload for c in await store.commands("dev-2")] == [{"k": 1}]


async def test_an_imported_device_replaces_the_one_with_its_id_or_endpoint(new_store: StoreFactory) -> None:
    """As SQLite's INSERT OR REPLACE with a unique endpoint: a row displaces every row sharing either."""
    async with opened(new_store()) as store:
        await store.put_device(DeviceEntry("dev-1", "ep-1"))
        await store.put_device(DeviceEntry("dev-2", "ep-2"))
        await store.put_device(DeviceEntry("dev-1", "ep-1b", model_id="dtmi:x;1"))  # dev-1 moves endpoint
        assert await store.device_for_endpoint("ep-1") is None
        await store.put_device(DeviceEntry("dev-3", "ep-2"))  # ep-2 now belongs to dev-3
        assert await store.devices() == [
            DeviceEntry("dev-1", "ep-1b", model_id="dtmi:x;1"),
            DeviceEntry("dev-3", "ep-2"),
        ]
        assert await store.device_for_endpoint("ep-2") == DeviceEntry("dev-3", "ep-2")


async def test_an_imported_device_keeps_its_connection(new_store: StoreFactory) -> None:
    async with opened(new_store()) as store:
        await store.put_device(DeviceEntry("sleepy-1", "ep-s", connection="ephemeral"))
    async with opened(new_store()) as store:
        assert await store.device_for_endpoint("ep-s") == DeviceEntry(
            "sleepy-1", "ep-s", connection="ephemeral"
        )

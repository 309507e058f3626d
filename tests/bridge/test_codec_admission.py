"""A Register's codec check (bridge/codec_admission.py) against a real SQLite device table and codec files."""

from __future__ import annotations

from pathlib import Path

import pytest

from translator.bridge.codec_admission import CodecAdmission
from translator.bridge.codecs import CodecCatalog
from translator.coap import BackPressure, DeviceIdentity, Forbidden
from translator.coap.hooks import gates_in_order
from translator.lwm2m import ObjectRegistry
from translator.store import DeviceEntry
from translator.store.sqlite import SqliteStore

GOOD = '[template]\nid = "dtmi:test:m;1"\n[[telemetry]]\npath = "/3303/0/5700"\nname = "temperature"\n'
UNKNOWN_OBJECT = '[template]\nid = "dtmi:test:m;1"\n[[telemetry]]\npath = "/32769/0/1"\nname = "level"\n'


def identity(endpoint: str) -> DeviceIdentity:
    return DeviceIdentity(endpoint, endpoint)


def catalog() -> CodecCatalog:
    return CodecCatalog(None, ObjectRegistry.builtin())


async def test_a_device_is_refused_for_a_codec_file_that_does_not_load(tmp_path: Path) -> None:
    good, unknown = tmp_path / "good.toml", tmp_path / "unknown.toml"
    good.write_text(GOOD)
    unknown.write_text(UNKNOWN_OBJECT)
    async with SqliteStore(tmp_path / "s.db") as store:
        for name, codec in (("a", good), ("b", unknown), ("c", tmp_path / "gone.toml"), ("d", None)):
            await store.put_device(DeviceEntry(name, f"ep-{name}", codec=str(codec) if codec else None))
        admission = CodecAdmission(store, catalog())
        await admission(identity("ep-a"))
        await admission(identity("ep-d"))  # no codec file: the default codec for its objects
        await admission(identity("ep-unknown"))  # not imported
        with pytest.raises(Forbidden) as refused:
            await admission(identity("ep-b"))
        assert str(refused.value).startswith(f"codec {unknown}:4: telemetry[0].path:"), refused.value
        with pytest.raises(Forbidden, match=r"gone\.toml"):
            await admission(identity("ep-c"))


async def test_an_unreadable_device_table_asks_the_device_to_come_back(tmp_path: Path) -> None:
    admission = CodecAdmission(SqliteStore(tmp_path / "s.db"), catalog(), retry_after=7)  # never opened
    with pytest.raises(BackPressure) as later:
        await admission(identity("ep-a"))
    assert later.value.retry_after == 7


async def test_gates_stop_at_the_first_refusal() -> None:
    seen: list[str] = []

    async def refuse(who: DeviceIdentity) -> None:
        seen.append("refuse")
        raise Forbidden("no")

    async def claim(who: DeviceIdentity) -> None:
        seen.append("claim")

    assert gates_in_order(None, None) is None
    assert gates_in_order(None, claim) is claim
    gate = gates_in_order(refuse, claim)
    assert gate is not None
    with pytest.raises(Forbidden):
        await gate(identity("ep"))
    assert seen == ["refuse"]

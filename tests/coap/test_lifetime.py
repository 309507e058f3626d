"""Lifetimes: 0 is "infinite" (bounded by how long the device goes unheard), and a lifetime the server wrote
to the device (/1/x/1) is the one its registration lives by. Pure: no sockets, explicit clocks."""

from __future__ import annotations

import pytest

from translator.coap import DeviceIdentity, RegistrationStore, parse_query
from translator.coap.errors import BadRequest
from translator.coap.lifetime import MAX_LIFETIME, lifetime_problem, written_lifetime
from translator.lwm2m import Path, Record


def test_lifetime_zero_is_accepted_and_out_of_range_refused() -> None:
    assert parse_query(["ep=e", "lt=0"]).lifetime == 0
    assert parse_query(["lt=0"], update=True).lifetime == 0
    with pytest.raises(BadRequest):
        parse_query(["ep=e", f"lt={MAX_LIFETIME + 1}"])
    assert lifetime_problem(0) is None and lifetime_problem(MAX_LIFETIME) is None
    assert lifetime_problem(-1) is not None and lifetime_problem(MAX_LIFETIME + 1) is not None


def test_an_infinite_lifetime_lasts_while_the_device_is_heard() -> None:
    heard: dict[str, float] = {}
    store = RegistrationStore(grace=5.0, unbounded=100.0, last_heard=lambda reg: heard.get(reg.endpoint))
    reg = store.register(
        DeviceIdentity.of("d"), parse_query(["ep=d", "lt=0"]), None, ("::1", 1), 0.0
    ).registration
    assert reg.lifetime == 0
    assert store.expire(104.0) == []
    heard["d"] = 90.0  # a notification at 90 s
    assert store.expire(106.0) == [] and store.by_endpoint("d") is reg
    assert store.expire(194.0) == []
    assert store.expire(196.0) == [reg]  # unheard for 100 s + grace


def test_a_written_lifetime_moves_the_expiry() -> None:
    store = RegistrationStore(grace=0.0)
    reg = store.register(
        DeviceIdentity.of("d"), parse_query(["ep=d", "lt=2"]), None, ("::1", 1), 0.0
    ).registration
    longer = store.set_lifetime(reg.reg_id, 30)
    assert longer is not None and longer.lifetime == 30 and store.by_endpoint("d") is longer
    assert store.expire(10.0) == []
    assert store.expire(31.0) == [longer]


def test_written_lifetime_finds_the_server_objects_lifetime() -> None:
    assert written_lifetime(Path(1, 0, 1), [Record(Path(1, 0, 1), 600)]) == 600
    assert written_lifetime(Path(1, 0), [Record(Path(1, 0, 0), 1), Record(Path(1, 0, 1), 0)]) == 0
    assert written_lifetime(Path(3311, 0, 1), [Record(Path(3311, 0, 1), 600)]) is None
    assert written_lifetime(Path(1, 0, 2), [Record(Path(1, 0, 2), 600)]) is None

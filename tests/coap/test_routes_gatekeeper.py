"""The pure parts of the LwM2M server's request handling: routing and the gatekeeper's checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from translator.coap.credentials import MemoryCredentials, PskCredential
from translator.coap.dtls.peers import virtual_peer
from translator.coap.errors import BackPressure, Code, Forbidden, PayloadTooLarge, RequestRejected
from translator.coap.gatekeeper import Gatekeeper, check_owner, claimed_endpoint
from translator.coap.registration import RegisterParams, RegistrationStore
from translator.coap.routes import Route, route, served
from translator.coap.settings import CoapSettings

PLAIN = ("::ffff:192.0.2.1", 5683, 0, 0)
METHODS = (Code.GET, Code.POST, Code.PUT, Code.DELETE)


@pytest.mark.parametrize(
    ("path", "method", "expected"),
    [
        (("rd",), Code.POST, Route.REGISTER),
        (("rd", "a1"), Code.POST, Route.UPDATE),
        (("rd", "a1"), Code.DELETE, Route.DEREGISTER),
        (("dp",), Code.POST, Route.SEND),
        (("ingest",), Code.POST, Route.INGEST),
    ],
)
def test_each_resource_has_its_route(path: tuple[str, ...], method: int, expected: Route) -> None:
    assert route(path, method) is expected


@pytest.mark.parametrize(
    ("path", "method", "code"),
    [
        (("rd",), Code.GET, Code.METHOD_NOT_ALLOWED),
        (("rd", "a1"), Code.PUT, Code.METHOD_NOT_ALLOWED),
        (("dp",), Code.DELETE, Code.METHOD_NOT_ALLOWED),
        (("rd", "a1", "x"), Code.POST, Code.NOT_FOUND),
        (("dp", "x"), Code.POST, Code.NOT_FOUND),
        ((), Code.POST, Code.NOT_FOUND),
    ],
)
def test_other_requests_are_refused(path: tuple[str, ...], method: int, code: int) -> None:
    with pytest.raises(RequestRejected) as refused:
        route(path, method)
    assert refused.value.code == code


@given(st.lists(st.sampled_from(["rd", "dp", "ingest", "x", "a1"]), max_size=3), st.sampled_from(METHODS))
def test_the_hot_path_and_the_router_agree_on_what_is_served(path: list[str], method: int) -> None:
    # The hot path answers 4.04 for what `served` refuses, without asking the router.
    try:
        route(path, method)
        routed = True
    except RequestRejected as exc:
        routed = exc.code != Code.NOT_FOUND
    assert served(path) == routed


def test_the_last_claimed_endpoint_wins() -> None:
    assert claimed_endpoint(["lt=60", "ep=a", "ep=b"]) == "b"
    assert claimed_endpoint(["lt=60"]) is None


def _register(store: RegistrationStore, endpoint: str, peer: tuple[object, ...]) -> None:
    store.register(
        _gatekeeper(store).admit_register([f"ep={endpoint}"], PLAIN, None, b"")[0],
        RegisterParams(endpoint=endpoint, lifetime=60),
        None,
        peer,
        0.0,
    )


def _gatekeeper(store: RegistrationStore, credentials: MemoryCredentials | None = None) -> Gatekeeper:
    settings = CoapSettings(max_payload=16, max_registrations=1)
    return Gatekeeper(settings=settings, store=store, clock=lambda: 0.0, credentials=credentials)


def test_a_registration_is_touched_only_from_its_security_context() -> None:
    store = RegistrationStore()
    _register(store, "plain", PLAIN)
    reg = store.by_endpoint("plain")
    check_owner(reg, ("::ffff:192.0.2.9", 1000, 0, 0))  # plain UDP: a NAT rebinding is allowed
    with pytest.raises(Forbidden):
        check_owner(reg, virtual_peer("plain"))


def test_size_room_and_session_checks() -> None:
    store = RegistrationStore()
    gatekeeper = _gatekeeper(store)
    with pytest.raises(PayloadTooLarge):
        gatekeeper.admit_register(["ep=a"], PLAIN, None, b"x" * 17)
    _register(store, "a", PLAIN)
    with pytest.raises(BackPressure):
        gatekeeper.admit_register(["ep=b"], PLAIN, None, b"")
    gatekeeper.admit_register(["ep=a"], PLAIN, None, b"")  # a known endpoint re-registers
    with pytest.raises(Forbidden):  # a virtual address without a DTLS session
        gatekeeper.security_for(virtual_peer("a"))


async def test_secured_names_are_refused_on_the_plain_port_and_ingest_names_remembered() -> None:
    credentials = MemoryCredentials([PskCredential("id-s", b"k" * 16, "secured")])
    gatekeeper = _gatekeeper(RegistrationStore(), credentials=credentials)
    assert gatekeeper.has_credentials
    with pytest.raises(Forbidden):
        await gatekeeper.refuse_secured("secured")
    await gatekeeper.refuse_secured("plain")
    assert not gatekeeper.knows_ingest("plain")
    assert gatekeeper.ingest_identity(["ep=plain"], PLAIN).endpoint == "plain"
    assert gatekeeper.knows_ingest("plain") and gatekeeper.ingest_identities == 1

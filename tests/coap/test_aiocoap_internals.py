"""The aiocoap internals the CoAP face patches or relies on are where it expects them.

pyproject.toml pins aiocoap to the tested range (>=0.4.17,<0.5), but even a patch release may move a private
name. Each check here names the internal and the module of ours that depends on it, so an upgrade that moves
one fails here, loudly and by name, instead of in an e2e test (or silently: `aiocoap_dedup.take_over` falls
back to aiocoap's unbounded cache with only a warning).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from translator.coap import aiocoap_dedup
from translator.coap.dedup import DedupCache


def _resolve(dotted: str) -> Any:
    module_name, _, attributes = dotted.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in attributes.split("."):
        target = getattr(target, attribute)
    return target


# internal → (its parameters as we call or replace it, who depends on it)
SIGNATURES: dict[str, tuple[list[str], str]] = {
    "aiocoap.messagemanager:MessageManager._deduplicate_message": (
        ["self", "message"],
        "coap/aiocoap_dedup.py replaces it",
    ),
    "aiocoap.messagemanager:MessageManager._store_response_for_duplicates": (
        ["self", "message"],
        "coap/aiocoap_dedup.py replaces it",
    ),
    "aiocoap.blockwise:_extract_block_key": (
        ["message"],
        "coap/blockwise.py keys block-wise transfers by it",
    ),
    "aiocoap.blockwise:ContinueException.__init__": (["self", "block1"], "coap/blockwise.py raises it"),
    "aiocoap.blockwise:IncompleteException.__init__": (["self", "message"], "coap/blockwise.py raises it"),
    "aiocoap.message:Message._append_request_block": (
        ["self", "next_block"],
        "coap/blockwise.py assembles Block1 requests with it",
    ),
    "aiocoap.blockwise:Block1Spool.feed_and_take": (
        ["self", "req"],
        "coap/blockwise.py's Block1Assembler replaces Block1Spool",
    ),
    "aiocoap.blockwise:Block2Cache.extract_or_insert": (
        ["self", "req", "response_builder"],
        "coap/blockwise.py's ShortResponses replaces Block2Cache",
    ),
    "aiocoap.error:ConstructionRenderableError.__init__": (
        ["self", "message"],
        "coap/blockwise.py's TooLarge and Busy subclass it",
    ),
    "aiocoap.error:ConstructionRenderableError.to_message": (
        ["self"],
        "coap/blockwise.py's TooLarge and Busy extend it",
    ),
    "aiocoap.transports.udp6:UDP6EndpointAddress.__init__": (
        ["self", "sockaddr", "interface", "pktinfo"],
        "coap/sender.py addresses raw downlinks with it",
    ),
    "aiocoap.transports.udp6:MessageInterfaceUDP6.datagram_msg_received": (
        ["self", "data", "ancdata", "flags", "address"],
        "coap/hotpath.py and coap/simulator.py wrap it",
    ),
    "aiocoap.transports.udp6:MessageInterfaceUDP6.datagram_errqueue_received": (
        ["self", "data", "ancdata", "flags", "address"],
        "coap/udp.py reads the error queue itself and hands it on",
    ),
    "aiocoap.transports.udp6:MessageInterfaceUDP6.error_received": (
        ["self", "exc"],
        "coap/udp.py hands socket errors on",
    ),
    "aiocoap.transports.udp6:MessageInterfaceUDP6.send": (["self", "message"], "coap/simulator.py wraps it"),
}


@pytest.mark.parametrize("internal", sorted(SIGNATURES))
def test_a_patched_or_called_internal_keeps_its_signature(internal: str) -> None:
    expected, who = SIGNATURES[internal]
    try:
        target = _resolve(internal)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"aiocoap no longer has {internal} ({who}): {error}")
    assert callable(target), f"aiocoap's {internal} is no longer callable ({who})"
    found = list(inspect.signature(target).parameters)
    assert found == expected, f"aiocoap's {internal} changed its parameters to {found} ({who})"


def test_create_server_context_takes_the_arguments_the_server_passes() -> None:
    parameters = inspect.signature(_resolve("aiocoap.protocol:Context.create_server_context")).parameters
    missing = {"site", "bind", "transports", "loggername"} - set(parameters)
    assert not missing, (
        f"aiocoap's Context.create_server_context lost {missing} (coap/listener.py passes them)"
    )


@pytest.mark.parametrize(
    ("owner", "method", "calls"),
    [
        ("aiocoap.interfaces:Resource", "_render_to_pipe", "self._block1.feed_and_take("),
        ("aiocoap.interfaces:Resource", "_render_to_pipe", "self._block2.extract_or_insert("),
    ],
)
def test_resources_still_reach_block_wise_state_through_the_attributes_the_server_sets(
    owner: str, method: str, calls: str
) -> None:
    # coap/resource.py's Lwm2mResource sets _block1/_block2 to bounded replacements; aiocoap must use them.
    source = inspect.getsource(getattr(_resolve(owner), method))
    assert calls in source, (
        f"aiocoap's {owner}.{method} no longer calls {calls}…) (coap/resource.py's Lwm2mResource)"
    )


def _chain(context: Any) -> tuple[Any, Any]:
    token_manager = context.request_interfaces[0]
    message_manager = token_manager.token_interface
    return message_manager, message_manager.message_interface


async def test_a_live_server_context_has_the_chain_the_server_walks() -> None:
    """coap/listener.py: request_interfaces[0].token_interface.message_interface, its transport's socket, and
    the two duplicate-detection hooks `aiocoap_dedup.take_over` replaces — on a real socket."""
    import aiocoap
    import aiocoap.resource

    context = await aiocoap.Context.create_server_context(
        aiocoap.resource.Site(), bind=("::", 0), transports=["udp6"]
    )
    try:
        try:
            message_manager, interface = _chain(context)
        except (AttributeError, IndexError) as error:
            pytest.fail(
                "aiocoap's Context no longer has request_interfaces[0].token_interface.message_interface "
                f"(coap/listener.py walks it): {error}"
            )
        hooks: list[Callable[..., Any]] = [
            message_manager._deduplicate_message,
            message_manager._store_response_for_duplicates,
        ]
        assert all(callable(hook) for hook in hooks)
        assert aiocoap_dedup.take_over(message_manager, DedupCache()), (
            "aiocoap_dedup.take_over found no hooks"
        )
        socket = interface.transport.get_extra_info("socket")
        assert socket.getsockname()[1] > 0, "the udp6 interface's transport no longer exposes its socket"
        remote = _resolve("aiocoap.transports.udp6:UDP6EndpointAddress")(
            ("::ffff:127.0.0.1", 5683, 0, 0), interface
        )
        # coap/aiocoap_dedup.py and coap/blockwise.py read these of a request's remote
        assert remote.sockaddr[:2] == ("::ffff:127.0.0.1", 5683)
        assert remote.maximum_payload_size > 0
        assert remote.blockwise_key is not None
    finally:
        await context.shutdown()


@pytest.mark.parametrize("switch", ["1", "0"])
async def test_the_reuse_port_switch_is_read_at_each_server_bind(
    switch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """coap/listener.py sets AIOCOAP_REUSE_PORT before each bind (on for a worker of `serve --workers`, off
    for a lone server): aiocoap's udp6 server socket must follow it, or the workers could not share the port
    (or a lone server could join them)."""
    import socket

    import aiocoap
    import aiocoap.resource

    monkeypatch.setenv("AIOCOAP_REUSE_PORT", switch)
    context = await aiocoap.Context.create_server_context(
        aiocoap.resource.Site(), bind=("::", 0), transports=["udp6"]
    )
    try:
        _, interface = _chain(context)
        sock = interface.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == int(switch)
    finally:
        await context.shutdown()

"""The LwM2M server's sockets: the aiocoap context on the plain UDP port, and the DTLS endpoint.

aiocoap stays the protocol engine behind the datagram tap; what is set up here is how its socket is bound
(shared between workers or not) and that its per-request dedup cache is ours (aiocoap_dedup.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiocoap

from translator.coap import aiocoap_dedup
from translator.coap.credentials import Credentials
from translator.coap.dedup import DedupCache
from translator.coap.registration import Peer, peer_host
from translator.coap.settings import CoapSettings
from translator.coap.udp import UDP_MAX

if TYPE_CHECKING:
    from translator.coap.dtls.endpoint import DtlsEndpoint

# Room for the header and options of a request whose payload is `max_payload`: a bigger datagram is cut by
# the kernel and refused with 4.13.
HEADER_ROOM = 2048
AIOCOAP_LOGGER = "translator.coap.aiocoap"


def recv_size(settings: CoapSettings) -> int:
    """The largest datagram the tap reads whole."""
    return min(UDP_MAX, settings.max_payload + HEADER_ROOM)


async def open_context(
    root: Any, settings: CoapSettings, *, dedup: DedupCache, share_port: bool
) -> tuple[Any, Any, tuple[str, int]]:
    """aiocoap's server context serving `root`: the context, its udp6 message interface, the bound address."""
    # aiocoap sets SO_REUSEPORT before its bind unless AIOCOAP_REUSE_PORT=0, read at each bind: its only
    # switch. Off, a lone server cannot join a group of workers sharing the port (the kernel would hand
    # it a share of their devices); on, a worker can.
    os.environ["AIOCOAP_REUSE_PORT"] = "1" if share_port else "0"
    context = await aiocoap.Context.create_server_context(
        root, bind=settings.bind, transports=["udp6"], loggername=AIOCOAP_LOGGER
    )
    token_manager = context.request_interfaces[0]
    message_manager = token_manager.token_interface
    aiocoap_dedup.take_over(message_manager, dedup)
    interface = message_manager.message_interface
    sock = interface.transport.get_extra_info("socket")
    # Should the switch above be overridden, a socket bound with SO_REUSEPORT would let a second server
    # bind the port too and silently take a share of the devices. Cleared now, the next bind on the port
    # fails with EADDRINUSE instead — unless sharing the port is the point (workers: the kernel hashes
    # each source to one of them).
    if not share_port:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
    sockname = sock.getsockname()
    return context, interface, (peer_host(sockname), int(sockname[1]))


async def start_dtls(
    settings: CoapSettings,
    credentials: Credentials,
    *,
    deliver: Callable[[bytes, Peer], None],
    clock: Callable[[], float],
    share_port: bool,
) -> DtlsEndpoint:
    """The DTLS endpoint on `settings.dtls_port`, started; decrypted datagrams go to `deliver`."""
    from translator.coap.dtls.endpoint import DtlsEndpoint  # OpenSSL only when DTLS is on
    from translator.coap.dtls.sessions import DtlsLimits, ServerCertificates

    dtls = DtlsEndpoint(
        host=settings.host,
        port=settings.dtls_port,
        credentials=credentials,
        deliver=deliver,
        limits=DtlsLimits(
            max_sessions=settings.dtls_max_sessions,
            max_handshakes=settings.dtls_max_handshakes,
            handshake_timeout=settings.dtls_handshake_timeout,
            idle_timeout=settings.dtls_idle_timeout,
        ),
        clock=clock,
        receive_buffer=settings.receive_buffer,
        reuse_port=share_port,
        certificates=(
            ServerCertificates(settings.dtls_certificate, settings.dtls_private_key, settings.dtls_client_ca)
            if settings.dtls_certificate is not None
            and settings.dtls_private_key is not None
            and settings.dtls_client_ca is not None
            else None
        ),
    )
    await dtls.start()
    return dtls

"""A DTLS device's address as the rest of the CoAP face sees it: one per identity, not per socket address.

Decrypted datagrams enter the datagram tap from a *virtual* address derived from the endpoint bound to the
session's PSK identity, in the IPv6 discard-only prefix 100::/64 (RFC 6666), which no real peer uses. So

* a registration made over DTLS is found (Send, notifications, dedup) by that identity, whatever socket
  address or session it comes from: after a NAT rebinding and a new handshake nothing has to move;
* nothing on the plain port can ever come from such an address;
* a restart restores registrations with the same address (it is a function of the endpoint only).

Sending to a virtual address goes through the endpoint's newest session.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

PREFIX = "100::"
PREFIX_BYTES = bytes.fromhex("0100000000000000")


VIRTUAL_PORT = 5684  # fixed, not the bound port: a restart on another port restores the same addresses


def virtual_peer(endpoint: str) -> tuple[str, int, int, int]:
    iid = hashlib.blake2b(endpoint.encode("utf-8"), digest_size=8, person=b"iotc-dtls").digest()
    return (str(ipaddress.IPv6Address(PREFIX_BYTES + iid)), VIRTUAL_PORT, 0, 0)


def is_virtual(peer: Any) -> bool:
    """Whether `peer` names a DTLS identity (every address in 100::/64 prints as `100::…`)."""
    try:
        host = peer[0]
    except (TypeError, IndexError):
        return False
    return isinstance(host, str) and host.startswith(PREFIX)

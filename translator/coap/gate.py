"""What the server answers a datagram it must not process: the RFC 7252 rules in one place. Pure.

* A message format error (§3) in a CON or NON is rejected with RST; in an ACK or RST it is silently
  ignored (§4.2, §4.3: rejecting an ACK or RST means ignoring it).
* An unrecognized or malformed critical option (§5.4.1, §5.4.3) in a CON request gets 4.02 Bad Option
  naming the option; in any other CON or NON message it rejects the message (RST).
* Proxy-Uri / Proxy-Scheme in a request: this server is no forward-proxy, 5.05 (§5.7.2).
* A datagram larger than the receive buffer (the kernel truncated it) is never processed: a request gets
  4.13 with Size1 = the largest request entity accepted (RFC 7959 §2.9.3, §4), anything else silence.

Error answers are not remembered for duplicates: a refused request had no effect, so answering a
retransmission again is the same as replaying the answer (§4.5 allows it for idempotent handling).
"""

from __future__ import annotations

from collections.abc import Callable

from translator.coap import wire
from translator.coap.errors import Code


def refusal(msg: wire.Datagram, next_mid: Callable[[], int]) -> bytes | None:
    """The bytes to send for a faulty message (`msg.fault` set), or None for a deliberate silence."""
    if msg.mtype >= wire.ACK:
        return None
    request = 0 < msg.code < 32
    if msg.fault == wire.PROXY and request:
        return _answer(msg, Code.PROXYING_NOT_SUPPORTED, b"not a forward-proxy", next_mid)
    if msg.fault == wire.BAD_OPTION and request and msg.mtype == wire.CON:
        return _answer(msg, Code.BAD_OPTION, f"option {msg.bad_option}".encode(), next_mid)
    return wire.encode(wire.RST, 0, msg.mid, b"")


def truncated(data: bytes, limit: int, next_mid: Callable[[], int]) -> bytes | None:
    """The answer to a datagram cut at the receive buffer: 4.13 for a request, else None."""
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    tkl = data[0] & 0x0F
    mtype = (data[0] >> 4) & 3
    code = data[1]
    if tkl > 8 or 4 + tkl > len(data) or not 0 < code < 32 or mtype >= wire.ACK:
        return None
    msg = wire.Datagram(mtype, code, (data[2] << 8) | data[3], data[4 : 4 + tkl])
    return _answer(
        msg,
        Code.REQUEST_ENTITY_TOO_LARGE,
        f"request entity exceeds {limit} bytes".encode(),
        next_mid,
        [(wire.OPT_SIZE1, wire.uint(limit))],
    )


def _answer(
    msg: wire.Datagram,
    code: int,
    diagnostic: bytes,
    next_mid: Callable[[], int],
    options: list[tuple[int, bytes]] | None = None,
) -> bytes:
    if msg.mtype == wire.CON:
        return wire.encode(wire.ACK, code, msg.mid, msg.token, options or (), diagnostic)
    return wire.encode(wire.NON, code, next_mid(), msg.token, options or (), diagnostic)

"""Which resource of the LwM2M server a request names (pure: the hot path and aiocoap's path route alike).

| request | route |
|---|---|
| `POST /rd` | Register |
| `POST /rd/{id}` | Update |
| `DELETE /rd/{id}` | De-register |
| `POST /dp` | Send |
| `POST /ingest` | plain CBOR ingest |

Anything else is refused: 4.05 for another method on a served resource, 4.04 for a path served by nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from translator.coap.errors import Code, RequestRejected


class Route(Enum):
    REGISTER = "register"
    UPDATE = "update"
    DEREGISTER = "deregister"
    SEND = "dp"
    INGEST = "ingest"


def served(path: Sequence[str]) -> bool:
    """Whether a request path names a resource of this server (what `route` accepts for some method)."""
    if not path:
        return False
    if path[0] == "rd":
        return len(path) <= 2
    return len(path) == 1 and path[0] in {"dp", "ingest"}


def route(path: Sequence[str], method: int) -> Route:
    """The route of a request; `RequestRejected` (4.04 or 4.05) when there is none."""
    if path and path[0] == "rd":
        if len(path) == 1:
            if method != Code.POST:
                raise RequestRejected("use POST to register", Code.METHOD_NOT_ALLOWED)
            return Route.REGISTER
        if len(path) == 2:
            if method == Code.POST:
                return Route.UPDATE
            if method == Code.DELETE:
                return Route.DEREGISTER
            raise RequestRejected("use POST or DELETE", Code.METHOD_NOT_ALLOWED)
    elif tuple(path) in (("dp",), ("ingest",)):
        if method != Code.POST:
            raise RequestRejected("use POST", Code.METHOD_NOT_ALLOWED)
        return Route.SEND if path[0] == "dp" else Route.INGEST
    raise RequestRejected(f"no resource /{'/'.join(path)}", Code.NOT_FOUND)

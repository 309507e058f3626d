"""The LwM2M server's resource tree on aiocoap: routes each request to the registration or the telemetry
face, and maps what they raise to an answer once (`answer_for`), with one rate-limited log line per kind.

Block-wise transfers are reassembled here, in bounded state (blockwise.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as AioCode

from translator.coap.blockwise import Block1Assembler, ShortResponses
from translator.coap.errors import Code, answer_for
from translator.coap.hooks import RefusalHook, refusal_kind
from translator.coap.ratelog import LogBudget
from translator.coap.registration import peer_host
from translator.coap.registration_face import RegistrationFace
from translator.coap.routes import Route, route
from translator.coap.settings import CoapSettings
from translator.coap.telemetry_face import TelemetryFace

log = logging.getLogger(__name__)


class Lwm2mResource(aiocoap.interfaces.Resource):  # type: ignore[misc]
    """The whole resource tree in one object: no `Site` (no deep copy, no per-request URI building)."""

    def __init__(
        self,
        *,
        settings: CoapSettings,
        registrations: RegistrationFace,
        telemetry: TelemetryFace,
        on_refused: RefusalHook,
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self._registrations = registrations
        self._telemetry = telemetry
        self._on_refused = on_refused
        self._refusal_log = LogBudget(clock=clock)  # one "refused" line per kind per 10 s
        # aiocoap's Resource._render_to_pipe uses these two; its own keep unbounded state (blockwise.py)
        self._block1 = Block1Assembler(
            max_payload=settings.max_payload,
            max_transfers=settings.block_transfers,
            lifetime=settings.block_lifetime,
            clock=clock,
        )
        self._block2 = ShortResponses()

    @property
    def block_transfers(self) -> int:
        return len(self._block1)

    def expire(self, now: float) -> None:
        self._block1.expire(now)  # looks at the oldest only: cheap every tick

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        return True  # registration payloads may come in blocks; aiocoap reassembles them

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)

    async def render(self, request: Any) -> Any:
        path = tuple(request.opt.uri_path)
        method = int(request.code)
        try:
            return await self._handle(route(path, method), request, path)
        except Exception as exc:
            code, reason, max_age = answer_for(exc)
            self._on_refused(code, refusal_kind(exc))
            if code == Code.INTERNAL_SERVER_ERROR:
                log.exception("request %s /%s failed", AioCode(method), "/".join(path))
            elif self._refusal_log.allow((method, path[:1], code)) is not None:
                log.info(
                    "refused %s /%s from %s: %s %s",
                    AioCode(method),
                    "/".join(path),
                    peer_host(request.remote.sockaddr),
                    Code(code).dotted,
                    reason,
                )
            response = aiocoap.Message(code=AioCode(code), payload=reason.encode("utf-8", "replace")[:200])
            if max_age is not None:
                response.opt.max_age = max_age
            return response

    async def _handle(self, to: Route, request: Any, path: tuple[str, ...]) -> Any:
        if to is Route.REGISTER:
            return await self._registrations.register(request)
        if to is Route.UPDATE:
            return self._registrations.update(request, path[1])
        if to is Route.DEREGISTER:
            return self._registrations.deregister(request, path[1])
        return await self._telemetry.slow(request, to)

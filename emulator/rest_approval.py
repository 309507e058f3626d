"""Emulator endpoints for approval and for counting attempts (IoT Central has no REST call for either: its
"Auto approve" switch lives on the Device connection groups page; approving or blocking one device is
`PATCH /api/devices/{id}` with `enabled`, in rest.py — emulator/approval.py cites the pages)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from emulator.rest_guard import ApiError

if TYPE_CHECKING:
    from emulator.app import Emulator


def routes(emulator: Emulator) -> list[web.RouteDef]:
    async def get_approval(request: web.Request) -> web.Response:
        return web.json_response({"autoApprove": emulator.dps.auto_approve})

    async def put_approval(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "BadRequest", "Body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("autoApprove"), bool):
            raise ApiError(400, "BadRequest", 'body must be {"autoApprove": true|false}')
        emulator.dps.auto_approve = body["autoApprove"]
        return web.json_response({"autoApprove": emulator.dps.auto_approve})

    async def attempts(request: web.Request) -> web.Response:
        """DPS register requests and hub CONNECTs, per device id (`?deviceId=` for one)."""
        device_id = request.query.get("deviceId")
        dps, hub = emulator.dps.attempts, emulator.hub.attempts
        if device_id is not None:
            return web.json_response({"dps": dps[device_id], "hub": hub[device_id]})
        return web.json_response({"dps": dict(dps), "hub": dict(hub)})

    return [
        web.get("/emulator/approval", get_approval),
        web.put("/emulator/approval", put_approval),
        web.get("/emulator/attempts", attempts),
    ]

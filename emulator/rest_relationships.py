"""`/api/devices/{id}/relationships[/{relationshipId}]` in IoT Central's 2022-07-31 shapes
(https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/list-relationships; the
create example's body is `{"source", "target"}` and its answer adds the `id`). Relations a downstream
device's DPS registration made (emulator/relationships.py) are listed here with those made over REST."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from emulator import relationships
from emulator.rest_guard import ApiError

if TYPE_CHECKING:
    from emulator.app import Emulator

PATH = "/api/devices/{device_id}/relationships"


def routes(emulator: Emulator) -> list[web.RouteDef]:
    application = emulator.application

    def device_id(request: web.Request) -> str:
        found = request.match_info["device_id"]
        if application.device(found) is None:
            raise ApiError(404, "NotFound", "Device not found")
        return found

    def relationship(request: web.Request) -> tuple[str, dict[str, str]]:
        owner = device_id(request)
        rid = request.match_info["relationship_id"]
        found = application.relationships.get(rid)
        if found is None or owner not in (found["source"], found["target"]):
            raise ApiError(404, "NotFound", "Relationship not found")
        return rid, found

    async def list_all(request: web.Request) -> web.Response:
        return web.json_response(
            {"value": relationships.of_device(application.relationships, device_id(request))}
        )

    async def get_one(request: web.Request) -> web.Response:
        return web.json_response(relationships.view(*relationship(request)))

    async def put_one(request: web.Request) -> web.Response:
        owner = device_id(request)
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "BadRequest", "Body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, "InvalidBody", "Body must be an object")
        source, target = body.get("source", owner), body.get("target")
        if not isinstance(source, str) or not isinstance(target, str) or owner not in (source, target):
            raise ApiError(422, "InvalidBody", "source and target are device ids, one of them this device")
        if application.device(source) is None or application.device(target) is None:
            raise ApiError(404, "NotFound", "Device not found")
        rid = request.match_info["relationship_id"]
        application.relationships[rid] = {"source": source, "target": target}
        emulator.changed()
        return web.json_response(relationships.view(rid, application.relationships[rid]))

    async def delete_one(request: web.Request) -> web.Response:
        rid, _ = relationship(request)
        del application.relationships[rid]
        emulator.changed()
        return web.Response(status=204)

    one = PATH + "/{relationship_id}"
    return [
        web.get(PATH, list_all),
        web.get(one, get_one),
        web.put(one, put_one),
        web.patch(one, put_one),
        web.delete(one, delete_one),
    ]

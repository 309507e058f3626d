"""What IoT Central checks before a REST request reaches its handler, and the shape of every error.

- `api-version` is a required query parameter of every call
  (https://learn.microsoft.com/rest/api/iotcentral/2022-07-31dataplane/devices/get-properties, "api-version
  query True"); an unknown or missing one is answered 400.
- Every call needs an Authorization header: an API token
  (https://learn.microsoft.com/azure/iot-central/core/howto-authorize-rest-api).
- "Throttling limit: 20 requests per second per application", answered "429 Too Many Requests"
  (https://learn.microsoft.com/rest/api/iotcentral/throttling).
- Errors are `{"error": {"code", "message", "requestId", "time"}}`.

Only `/api/...` is IoT Central's; the emulator's own `/emulator/...` endpoints are checked for nothing.
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from emulator.state import utc_now_iso

API_VERSIONS = frozenset({"2022-07-31", "2022-05-31", "2022-10-31-preview", "2022-06-30-preview"})
CURRENT_API_VERSION = "2022-07-31"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "requestId": str(uuid.uuid4()),
            "time": utc_now_iso(),
        }
    }


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


class ApiError(web.HTTPException):
    """Raised by a handler: becomes an error response in IoT Central's shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps(error_body(code, message)), content_type="application/json")


class RequestRate:
    """At most `limit` requests in any one-second window (0: no limit)."""

    def __init__(self, limit: float, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._recent: deque[float] = deque()

    def admit(self) -> float:
        """0 when the request may go ahead, else the seconds until one may."""
        if self._limit <= 0:
            return 0.0
        now = self._clock()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self._limit:
            return max(0.001, self._recent[0] + 1.0 - now)
        self._recent.append(now)
        return 0.0


def guard(*, token: Callable[[], str], rate: RequestRate) -> Middleware:
    """The middleware; `token()` is the API token required ('' when auth is off)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            required = token()
            if required and request.headers.get("Authorization") != required:
                return error_response(401, "Unauthorized", "Missing or wrong Authorization header")
            version = request.query.get("api-version")
            if version is None:
                return error_response(
                    400, "MissingApiVersionParameter", "The api-version query parameter is required"
                )
            if version not in API_VERSIONS:
                return error_response(
                    400, "InvalidApiVersionParameter", f"api-version {version!r} is not supported"
                )
            wait = rate.admit()
            if wait:
                return error_response(
                    429,
                    "TooManyRequests",
                    "Rate limit of 20 requests per second per application exceeded",
                    {"Retry-After": str(max(1, round(wait)))},
                )
        try:
            return await handler(request)
        except ApiError:
            raise
        except web.HTTPException as error:
            if error.status_code < 400 or error.content_type == "application/json":
                raise
            # aiohttp's own answers (unknown path, wrong method) in IoT Central's error shape.
            return error_response(
                error.status_code, error.reason.replace(" ", ""), error.text or error.reason
            )

    return middleware

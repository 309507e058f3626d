"""The simulated client's object model: its values and attributes, the answers to the server's
requests (Read / Discover / Write / Write-Attributes / Execute / Create / Delete / Read-Composite) and
its observations.

`SimulatedObjects` is what the device serves; `SimulatedDevice` (simulator.py) adds the socket and the
client → server side (Register, Update, Send, queue mode). With `SimulatorOptions(attributes=True)`
notifications follow pmin/pmax/gt/lt/st as the LwM2M 1.2 client does (see simulator.py's docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.interfaces
from aiocoap.numbers.codes import Code as AioCode

from translator.coap.simoptions import SimulatorOptions, default_values
from translator.lwm2m import (
    ContentFormat,
    Link,
    Lwm2mFormatError,
    ObjectRegistry,
    Operations,
    Path,
    Record,
    Value,
    decode,
    encode,
    format_links,
)


@dataclass(eq=False)
class _Watch:
    """One observation's notification state when attributes are honoured."""

    paths: tuple[Path, ...]
    observation: Any
    last: float = 0.0  # loop time of the last notification
    sent: dict[Path, Value] = field(default_factory=dict)  # the values it carried
    pending: asyncio.TimerHandle | None = None  # a notification waiting for pmin
    periodic: asyncio.TimerHandle | None = None  # the pmax notification

    def stop(self) -> None:
        for handle in (self.pending, self.periodic):
            if handle is not None:
                handle.cancel()
        self.pending = self.periodic = None


def _fires(attributes: Mapping[str, float], old: Value | None, new: Value) -> bool:
    """Whether a change from `old` (last notified) to `new` meets the gt/lt/st conditions (any change
    when none is set, or for values that are not numbers)."""
    conditions = [name for name in ("gt", "lt", "st") if name in attributes]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
    if old is None or not conditions or not numeric:
        return old != new
    assert isinstance(old, int | float) and isinstance(new, int | float)
    fired = False
    if "st" in attributes:
        fired |= abs(new - old) >= attributes["st"]
    if "gt" in attributes:
        fired |= (old > attributes["gt"]) != (new > attributes["gt"])
    if "lt" in attributes:
        fired |= (old < attributes["lt"]) != (new < attributes["lt"])
    return fired


class SimulatedObjects:
    """The objects a simulated device holds and how it answers requests on them."""

    def __init__(
        self,
        *,
        options: SimulatorOptions | None = None,
        values: Mapping[Path, Value] | None = None,
        registry: ObjectRegistry | None = None,
    ) -> None:
        self.options = options or SimulatorOptions()
        self.values: dict[Path, Value] = dict(default_values() if values is None else values)
        self.registry = registry or ObjectRegistry.builtin()
        self.attributes: dict[Path, dict[str, str]] = {}
        self.executed: list[tuple[Path, str]] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self._observers: dict[tuple[Path, ...], set[Any]] = {}
        self._watches: dict[Any, _Watch] = {}  # per observation, with `attributes`
        self.notifications = 0  # notifications sent after the first answers
        self._observation_tokens: dict[bytes, tuple[tuple[Path, ...], Any]] = {}

    def set_value(self, path: Path, value: Value) -> None:
        """Change a value; observers of it (or of an ancestor) are notified (when its attributes say so)."""
        self.values[path] = value
        for paths, observers in list(self._observers.items()):
            if any(path.startswith(p) for p in paths):
                for obs in list(observers):
                    watch = self._watches.get(obs)
                    if watch is None:
                        self.notifications += 1
                        obs.trigger()
                    else:
                        self._consider(watch, path, value)

    def effective_attributes(self, path: Path) -> dict[str, float]:
        """The attributes in force for `path`: those of the object, overridden by the instance's, then the
        resource's (LwM2M attribute inheritance)."""
        merged: dict[str, float] = {}
        for level in range(1, len(path) + 1):
            for name, text in self.attributes.get(Path.of(path[:level]), {}).items():
                with contextlib.suppress(ValueError):
                    merged[name] = float(text)
        return merged

    def _consider(self, watch: _Watch, path: Path, value: Value) -> None:
        attributes = self.effective_attributes(path)
        if not _fires(attributes, watch.sent.get(path), value):
            return
        loop = asyncio.get_running_loop()
        due = watch.last + attributes.get("pmin", 0.0)
        if loop.time() >= due:
            self._notify(watch)
        elif watch.pending is None:
            watch.pending = loop.call_later(due - loop.time(), self._notify, watch)

    def _notify(self, watch: _Watch, *, first: bool = False) -> None:
        """Send the whole observation (every member of a composite) now; pmax starts again."""
        watch.stop()
        loop = asyncio.get_running_loop()
        watch.last = loop.time()
        watch.sent = {p: v for p, v in self.values.items() if any(p.startswith(m) for m in watch.paths)}
        if not first:
            self.notifications += 1
            watch.observation.trigger()
        periods = [self.effective_attributes(m).get("pmax") for m in watch.paths]
        pmax = min((p for p in periods if p is not None and p > 0), default=None)
        if pmax is not None:
            watch.periodic = loop.call_later(pmax, self._notify, watch)

    @property
    def observed(self) -> list[tuple[Path, ...]]:
        return [k for k, v in self._observers.items() if v]

    # --- server → client ---------------------------------------------------------------------------

    def _add_observation(self, request: Any, serverobservation: Any) -> None:
        try:
            paths = self._request_paths(request)
        except Lwm2mFormatError:
            return
        if not any(self._under(p) for p in paths):
            return
        observers = self._observers.setdefault(paths, set())
        observers.add(serverobservation)
        if self.options.attributes:
            watch = self._watches[serverobservation] = _Watch(paths, serverobservation)
            self._notify(watch, first=True)  # the first answer is the render that follows
        token = bytes(request.token)
        self._observation_tokens[token] = (paths, serverobservation)

        def cancelled() -> None:
            observers.discard(serverobservation)
            self._observation_tokens.pop(token, None)
            ended = self._watches.pop(serverobservation, None)
            if ended is not None:
                ended.stop()

        serverobservation.accept(cancelled)

    def _request_paths(self, request: Any) -> tuple[Path, ...]:
        if request.code == AioCode.FETCH:
            cf = request.opt.content_format
            recs = decode(int(cf) if cf is not None else ContentFormat.SENML_JSON, bytes(request.payload))
            return tuple(r.path for r in recs)
        return (Path.parse("/" + "/".join(request.opt.uri_path)),)

    def _under(self, path: Path) -> list[Record]:
        return [Record(p, v) for p, v in sorted(self.values.items()) if p.startswith(path)]

    def _reply(self, code: Any, payload: bytes = b"", cf: int | None = None) -> Any:
        msg = aiocoap.Message(code=code, payload=payload)
        if cf is not None:
            msg.opt.content_format = cf
        if not self.options.con_notifications:
            msg.mtype = aiocoap.NON  # turned into a piggy-backed ACK for the first response
        return msg

    async def _render(self, request: Any) -> Any:
        method = request.code.name
        path_text = "/" + "/".join(request.opt.uri_path)
        self.requests.append((method, path_text))
        try:
            path = Path.parse(path_text)
        except Lwm2mFormatError:
            return self._reply(AioCode.NOT_FOUND)
        try:
            if request.code == AioCode.GET:
                return self._read(request, path)
            if request.code == AioCode.PUT:
                return self._put(request, path)
            if request.code == AioCode.POST:
                return self._post(request, path)
            if request.code == AioCode.DELETE:
                if len(path) != 2 or not self._under(path):
                    return self._reply(AioCode.NOT_FOUND if len(path) == 2 else AioCode.METHOD_NOT_ALLOWED)
                for p in [p for p in self.values if p.startswith(path)]:
                    del self.values[p]
                return self._reply(AioCode.DELETED)
            if request.code == AioCode.FETCH:
                return await self._fetch(request)
        except Lwm2mFormatError as exc:
            return self._reply(AioCode.BAD_REQUEST, exc.reason.encode())
        return self._reply(AioCode.METHOD_NOT_ALLOWED)

    def _accept(self, request: Any, path: Path) -> int:
        accept = request.opt.accept
        if accept is not None:
            return int(accept)
        return self.options.default_format if len(path) < 3 else ContentFormat.TEXT

    def _read(self, request: Any, path: Path) -> Any:
        if request.opt.accept == ContentFormat.LINK_FORMAT:
            return self._discover(path)
        if path and path[0] == 0:
            return self._reply(AioCode.UNAUTHORIZED)
        records = self._under(path)
        if not records:
            return self._reply(AioCode.NOT_FOUND)
        cf = self._accept(request, path)
        if cf not in self.options.formats:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        try:
            payload = encode(cf, records, base_path=path, registry=self.registry)
        except Lwm2mFormatError:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        return self._reply(AioCode.CONTENT, payload, cf)

    def _discover(self, path: Path) -> Any:
        records = self._under(path)
        if not records:
            return self._reply(AioCode.NOT_FOUND)
        targets = sorted({path, *(Path.of(r.path[: max(len(path), 3)]) for r in records)})
        links = [Link(str(t), tuple(self.attributes.get(t, {}).items())) for t in targets]
        return self._reply(AioCode.CONTENT, format_links(links).encode(), ContentFormat.LINK_FORMAT)

    def _decode_body(self, request: Any, path: Path) -> list[Record] | Any:
        cf = request.opt.content_format
        if cf is None or int(cf) not in self.options.formats:
            return self._reply(AioCode.UNSUPPORTED_CONTENT_FORMAT)
        return decode(int(cf), bytes(request.payload), base_path=path, registry=self.registry)

    def _put(self, request: Any, path: Path) -> Any:
        if request.opt.uri_query:
            if self.options.strict_attributes and not self._under(path):
                return self._reply(AioCode.NOT_FOUND)
            attrs = self.attributes.setdefault(path, {})
            for item in request.opt.uri_query:
                name, _, value = item.partition("=")
                if value:
                    attrs[name] = value
                else:
                    attrs.pop(name, None)
            return self._reply(AioCode.CHANGED)
        refused = self._refusal(path)
        if refused is not None:
            return refused
        records = self._decode_body(request, path)
        if not isinstance(records, list):
            return records
        if len(path) == 2:  # replace the instance
            for p in [p for p in self.values if p.startswith(path)]:
                del self.values[p]
        for rec in records:
            if rec.value is not None:
                self.set_value(rec.path, rec.value)
        return self._reply(AioCode.CHANGED)

    def _refusal(self, path: Path) -> Any:
        for refused, code in self.options.refuse_writes.items():
            if refused.startswith(path) or path.startswith(refused):
                return self._reply(AioCode(code), b"refused by the device")
        return None

    def _post(self, request: Any, path: Path) -> Any:
        if len(path) == 3:
            model = self.registry.resource_model(path[0], path[2])
            if model is None or Operations.EXECUTE not in model.operations:
                return self._reply(AioCode.METHOD_NOT_ALLOWED)
            refused = self.options.refuse_executes.get(path)
            if refused is not None:
                return self._reply(AioCode(refused), b"refused by the device")
            self.executed.append((path, bytes(request.payload).decode("utf-8", "replace")))
            return self._reply(AioCode.CHANGED)
        if len(path) == 2:
            if not self._under(path):
                return self._reply(AioCode.NOT_FOUND)
            refused = self._refusal(path)
            if refused is not None:
                return refused
            records = self._decode_body(request, path)
            if not isinstance(records, list):
                return records
            for rec in records:
                if rec.value is not None:
                    self.set_value(rec.path, rec.value)
            return self._reply(AioCode.CHANGED)
        if len(path) == 1:
            records = self._decode_body(request, path)
            if not isinstance(records, list):
                return records
            used = {p[1] for p in self.values if p[0] == path[0]}
            given = {r.path[1] for r in records if len(r.path) >= 2}
            iid = given.pop() if len(given) == 1 else min(set(range(len(used) + 1)) - used)
            for rec in records:
                target = Path(path[0], iid, *rec.path[2:]) if len(rec.path) >= 3 else rec.path
                if rec.value is not None:
                    self.values[target] = rec.value
            response = self._reply(AioCode.CREATED)
            response.opt.location_path = (str(path[0]), str(iid))
            return response
        return self._reply(AioCode.METHOD_NOT_ALLOWED)

    async def _fetch(self, request: Any) -> Any:
        mode = self.options.composite
        if mode == "unsupported":
            return self._reply(AioCode.METHOD_NOT_ALLOWED)
        if mode == "silent":
            await asyncio.sleep(3600)  # aiocoap sends an empty ACK; no answer ever comes (like Wakaama)
        paths = self._request_paths(request)
        records = [r for p in paths for r in self._under(p)]
        cf = int(request.opt.accept) if request.opt.accept is not None else ContentFormat.SENML_JSON
        if cf not in (ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR) or cf not in self.options.formats:
            return self._reply(AioCode.NOT_ACCEPTABLE)
        return self._reply(AioCode.CONTENT, encode(cf, records, base_path=Path(), registry=self.registry), cf)


class ObjectsResource(aiocoap.interfaces.ObservableResource):  # type: ignore[misc]
    def __init__(self, device: SimulatedObjects) -> None:
        super().__init__()
        self._device = device

    async def needs_blockwise_assembly(self, request: Any) -> bool:
        return True

    async def add_observation(self, request: Any, serverobservation: Any) -> None:
        self._device._add_observation(request, serverobservation)

    async def render(self, request: Any) -> Any:
        return await self._device._render(request)

    async def render_to_pipe(self, pipe: Any) -> None:
        await self._render_to_pipe(pipe)

"""What the supervisor and a worker say to each other: one JSON line each way.

The supervisor writes the worker's order on its stdin (settings included: the IoT Central key never appears
in a process list) and keeps stdin open: end of file tells the worker its supervisor is gone. The worker
writes one line on stdout once its sockets are bound: the ports it got (the first worker's become everyone's
when the settings asked for port 0) and its operations port, where the supervisor scrapes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from translator.settings import IotcSettings, Settings

_SETTINGS = TypeAdapter(Settings)
_IOTC = TypeAdapter(IotcSettings)


@dataclass(frozen=True, slots=True)
class WorkerOrder:
    index: int
    settings: Settings
    emulated: IotcSettings | None  # the supervisor's embedded emulator, or None: settings.iotc is real
    workers: int = 1  # how many workers the supervisor runs: each keeps to at most 1/workers of the quotas

    def encode(self) -> bytes:
        document: dict[str, Any] = {
            "index": self.index,
            "settings": _SETTINGS.dump_python(self.settings, mode="json"),
            "emulated": None if self.emulated is None else _IOTC.dump_python(self.emulated, mode="json"),
            "workers": self.workers,
        }
        return json.dumps(document).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> WorkerOrder:
        document = json.loads(line)
        emulated = document["emulated"]
        return cls(
            index=int(document["index"]),
            settings=_SETTINGS.validate_python(document["settings"]),
            emulated=None if emulated is None else _IOTC.validate_python(emulated),
            workers=int(document.get("workers", 1)),
        )


@dataclass(frozen=True, slots=True)
class WorkerReady:
    pid: int
    coap_port: int
    operations_port: int
    dtls_port: int | None = None
    http_port: int | None = None

    def encode(self) -> bytes:
        return json.dumps({"ready": _fields(self)}).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> WorkerReady:
        """Raises ValueError on anything but a ready line."""
        try:
            ready = json.loads(line)["ready"]
            return cls(
                pid=int(ready["pid"]),
                coap_port=int(ready["coap_port"]),
                operations_port=int(ready["operations_port"]),
                dtls_port=None if ready.get("dtls_port") is None else int(ready["dtls_port"]),
                http_port=None if ready.get("http_port") is None else int(ready["http_port"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a worker's ready line: {line[:200]!r}") from error


def _fields(ready: WorkerReady) -> dict[str, int | None]:
    return {
        "pid": ready.pid,
        "coap_port": ready.coap_port,
        "operations_port": ready.operations_port,
        "dtls_port": ready.dtls_port,
        "http_port": ready.http_port,
    }


@dataclass(frozen=True, slots=True)
class WorkerTemplate:
    """A device template a worker built (DTDL interfaces), for the supervisor's embedded emulator to publish
    when a device announces its model id — README step 2, done for the user, as in one process."""

    model_id: str
    interfaces: list[dict[str, Any]]

    def encode(self) -> bytes:
        return (
            json.dumps({"template": {"model_id": self.model_id, "interfaces": self.interfaces}}).encode()
            + b"\n"
        )


def decode_line(line: bytes) -> WorkerReady | WorkerTemplate:
    """A worker's line on stdout. Raises ValueError on anything else."""
    try:
        document = json.loads(line)
        template = document.get("template") if isinstance(document, dict) else None
    except json.JSONDecodeError as error:
        raise ValueError(f"not a worker's line: {line[:200]!r}") from error
    if template is not None:
        try:
            return WorkerTemplate(str(template["model_id"]), list(template["interfaces"]))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a worker's template line: {line[:200]!r}") from error
    return WorkerReady.decode(line)

"""Logging set-up for `serve`: the level asked for, text or JSON lines, every line about a device carrying
its device id, and no logger that would print secrets."""

from __future__ import annotations

import logging
from typing import IO, Any, Literal

from pythonjsonlogger.json import JsonFormatter

# aiosqlite logs every call at DEBUG with its arguments: SQL parameters, so imported device keys and
# telemetry payloads. Kept at INFO unless `log_sql` (IOTC_TRANSLATOR_LOG_SQL=true) asks for them.
SQL_LOGGERS = ("aiosqlite",)

# The one naming convention: a line about a device is logged through `device_log`, which puts the device id
# in the record as `device_id` (a JSON field; `device=<id>` in text) rather than in the message.
DEVICE_FIELD = "device_id"

DeviceLog = logging.LoggerAdapter[logging.Logger]


def device_log(logger: logging.Logger, device_id: str) -> DeviceLog:
    """The logger of one device's lines."""
    return logging.LoggerAdapter(logger, {DEVICE_FIELD: device_id})


def log_for(logger: logging.Logger, device_id: str | None) -> DeviceLog | logging.Logger:
    """`device_log` when the line is about a known device, else the plain logger."""
    return logger if device_id is None else device_log(logger, device_id)


LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class DeviceTextFormatter(logging.Formatter):
    """Text lines; a record about a device (`extra={"device_id": ...}`, as the bridge's adapters give)
    reads `... name device=<id> message`, so grep finds every line of one device."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        device: Any = getattr(record, DEVICE_FIELD, None)
        if device is None:
            return super().formatMessage(record)
        saved = record.message
        record.message = f"device={device} {saved}"
        try:
            return super().formatMessage(record)
        finally:
            record.message = saved


def log_handler(log_format: LogFormat, stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        # One JSON object per line: timestamp, level, logger, message, and every `extra` (device_id).
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(DeviceTextFormatter(TEXT_FORMAT))
    return handler


def configure_logging(level: str, *, log_sql: bool = False, log_format: LogFormat = "text") -> None:
    logging.basicConfig(level=level.upper(), handlers=[log_handler(log_format)])
    quiet_sql(log_sql=log_sql)


def quiet_sql(*, log_sql: bool) -> None:
    for name in SQL_LOGGERS:
        # NOTSET follows the root level; INFO keeps DEBUG out whatever the root level is.
        logging.getLogger(name).setLevel(logging.NOTSET if log_sql else logging.INFO)

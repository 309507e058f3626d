"""Logging set-up for `serve`: the level asked for, except for loggers that would print secrets."""

from __future__ import annotations

import logging

# aiosqlite logs every call at DEBUG with its arguments: SQL parameters, so imported device keys and
# telemetry payloads. Kept at INFO unless `log_sql` (IOTC_TRANSLATOR_LOG_SQL=true) asks for them.
SQL_LOGGERS = ("aiosqlite",)


def configure_logging(level: str, *, log_sql: bool = False) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    quiet_sql(log_sql=log_sql)


def quiet_sql(*, log_sql: bool) -> None:
    for name in SQL_LOGGERS:
        # NOTSET follows the root level; INFO keeps DEBUG out whatever the root level is.
        logging.getLogger(name).setLevel(logging.NOTSET if log_sql else logging.INFO)

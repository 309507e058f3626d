"""The session's lines about a device follow the log convention (translator/ops/logs.py): the device id is
in the record as `device_id`, not in the message."""

from __future__ import annotations

import logging

import pytest

from translator.iotc.client.session_types import SessionCallbacks, released_by_owner
from translator.ops.logs import DEVICE_FIELD


async def test_a_failed_check_before_reconnecting_is_logged_about_the_device(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def failing() -> str | None:
        raise ConnectionError("redis away")

    with caplog.at_level(logging.ERROR, logger="translator.iotc.client.session"):
        # A check that fails cannot tell: the session reconnects.
        assert await released_by_owner(SessionCallbacks(before_reconnect=failing), "dev-7") is None
    [record] = caplog.records
    assert getattr(record, DEVICE_FIELD, None) == "dev-7"
    assert "dev-7" not in record.getMessage()
    assert record.exc_info is not None

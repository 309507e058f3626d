"""Log lines: a line about a device names it (text and JSON), and JSON lines are JSON for log pipelines."""

from __future__ import annotations

import io
import json
import logging

from translator.ops.logs import log_handler


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    logger = logging.getLogger(f"tests.logs.{name}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def test_a_text_line_about_a_device_names_it() -> None:
    out = io.StringIO()
    logger = _logger(log_handler("text", out), "text")
    # The bridge logs through adapters carrying the device id (bridge/device.py, bridge/setup.py).
    logging.LoggerAdapter(logger, {"device_id": "urn:imei:359"}).info("session up after %d s", 3)
    logger.info("translator ready")
    about_device, plain = out.getvalue().splitlines()
    assert about_device.endswith("INFO tests.logs.text device=urn:imei:359 session up after 3 s")
    assert plain.endswith("INFO tests.logs.text translator ready")


def test_a_json_line_carries_the_device_id_as_a_field() -> None:
    out = io.StringIO()
    logger = _logger(log_handler("json", out), "json")
    logging.LoggerAdapter(logger, {"device_id": "dev-1"}).warning("outbox full: %s", "dropped")
    line = json.loads(out.getvalue())
    assert line["device_id"] == "dev-1"
    assert line["message"] == "outbox full: dropped"
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.logs.json"
    assert "time" in line

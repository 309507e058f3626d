"""The plain port's default posture: open with the embedded emulator, closed with a real IoT Central."""

from __future__ import annotations

import logging

import pytest

from translator.coap import CoapSettings
from translator.serve import plain_posture


def test_emulator_keeps_the_demo_open() -> None:
    assert plain_posture(CoapSettings(), real_iotc=False).auto_register


def test_real_iot_central_admits_only_the_allow_list(caplog: pytest.LogCaptureFixture) -> None:
    assert not plain_posture(CoapSettings(allow=("a",)), real_iotc=True).auto_register


def test_opting_in_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        chosen = plain_posture(CoapSettings(insecure_auto_register=True), real_iotc=True)
    assert chosen.auto_register and "insecure_auto_register" in caplog.text

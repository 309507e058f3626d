"""The `[iotc]` and `[emulator]` settings sections: where devices go — IoT Central, plain IoT Hub, or the
built-in emulator when neither is configured — and at which pace and deadlines."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic.dataclasses import dataclass

from translator.settings_types import SECTION, OptionalFile, OptionalStr, Port, RemotePort

# IoT Hub accepts a client keep-alive of at most 1177 s (its server side waits 1.5 × that, capped at
# 1767 s): https://learn.microsoft.com/azure/iot/iot-mqtt-connect-to-iot-hub#default-keep-alive-timeout
MAX_KEEP_ALIVE = 1177
# IoT Hub direct methods (IoT Central commands) wait 5..300 s for the device's answer:
# https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-direct-methods#method-invocation-for-iot-hub
MAX_COMMAND_DEADLINE = 300.0


@dataclass(frozen=True, slots=True, config=SECTION)
class IotcSettings:
    """Where devices go: IoT Central (ID scope + group key, or an X.509 enrollment CA), plain IoT Hub
    (per-device connection strings, from `devices import`, with `hub_only`), or — with none — the built-in
    emulator."""

    id_scope: str = Field(default="", description="the ID scope of the IoT Central application's DPS")
    group_key: str = Field(default="", description="SAS group enrollment key (primary or secondary), base64")
    x509_ca_cert: OptionalFile = Field(
        default=None,
        description="an X.509 enrollment CA (with x509_ca_key): device certificates (CN = device id) "
        "are minted",
    )
    x509_ca_key: OptionalFile = Field(default=None, description="the key of x509_ca_cert")
    hub_only: bool = Field(
        default=False,
        description="plain IoT Hub: only devices imported with a connection string connect (no DPS, no ID "
        "scope needed); the built-in emulator is not started",
    )
    dps_host: str = Field(
        default="global.azure-devices-provisioning.net", min_length=1, description="DPS host"
    )
    dps_port: RemotePort = Field(default=8883, description="DPS MQTT port")
    hub_port: RemotePort = Field(default=8883, description="IoT Hub MQTT port")
    ca_file: OptionalFile = Field(
        default=None, description="trust this CA instead of the system's (the emulator's)"
    )
    gateway_host: OptionalStr = Field(
        default=None, description="dial hubs here instead of at their names (the emulator)"
    )
    transport: Literal["lean", "aiomqtt"] = Field(default="lean", description="the MQTT client")
    max_sessions: int = Field(default=100_000, ge=1, description="MQTT sessions open at once")
    # Pacers (translator/iotc/client/pacer.py), each at a quota Microsoft documents; 0 turns a pacer off.
    # DPS: 200 registrations/min — https://learn.microsoft.com/azure/iot-dps/about-iot-dps#quotas-and-limits
    # IoT Hub S1: new connections and device-to-cloud sends, the higher of 100/s or 12/s/unit —
    # https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-quotas-throttling
    # IoT Central: a device may send up to 10 messages/s for a while; 100 property updates/s per application —
    # https://learn.microsoft.com/azure/iot-central/core/concepts-quotas-limits
    dps_registrations_per_minute: float = Field(
        default=200.0, ge=0, description="DPS registrations per minute (DPS's quota); 0: not paced"
    )
    connect_rate: float = Field(
        default=100.0, gt=0, description="new hub connections per second (IoT Hub S1 admits 100)"
    )
    telemetry_rate: float = Field(
        default=100.0, ge=0, description="device-to-cloud messages per second, all devices; 0: not paced"
    )
    device_telemetry_rate: float = Field(
        default=10.0, ge=0, description="device-to-cloud messages per second per device; 0: not paced"
    )
    twin_update_rate: float = Field(
        default=100.0, ge=0, description="reported-property updates per second, all devices; 0: not paced"
    )
    idle_timeout: float = Field(
        default=0.0,
        ge=0,
        description="seconds before an idle session of an unregistered sensor closes; 0: never",
    )
    keep_alive: int = Field(
        default=300, ge=1, le=MAX_KEEP_ALIVE, description="MQTT keep-alive in seconds (IoT Hub: at most 1177)"
    )
    reconnect_min: float = Field(
        default=1.0,
        gt=0,
        description="reconnect backoff: full jitter under min(reconnect_max, reconnect_min × 2^attempt); "
        "back to the start after a PUBACK or 10 s connected",
    )
    reconnect_max: float = Field(default=60.0, gt=0, description="the backoff's ceiling (≥ reconnect_min)")
    approval_retry: float = Field(
        default=60.0,
        gt=0,
        description="a device IoT Central refuses (waiting for approval, blocked) asks DPS again after a "
        "wait drawn from [c/2, c), c = min(approval_retry_max, approval_retry × 2^attempt)",
    )
    approval_retry_max: float = Field(
        default=900.0, gt=0, description="that wait's ceiling (≥ approval_retry)"
    )
    token_ttl: int = Field(
        default=3600, ge=300, description="SAS token lifetime; renewed 2 minutes before expiry"
    )
    telemetry_timeout: float = Field(
        default=5.0, gt=0, description="a publish not acknowledged by then goes to the outbox"
    )
    command_deadline: float = Field(
        default=25.0,
        gt=0,
        le=MAX_COMMAND_DEADLINE,
        description="answer a command by then (IoT Central gives up after 30 s)",
    )

    @field_validator("group_key")
    @classmethod
    def _base64(cls, key: str, info: ValidationInfo) -> str:
        if key:
            try:
                base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("not base64") from None
            if not info.data.get("id_scope"):
                raise ValueError("a group key needs iotc.id_scope")
        return key

    @field_validator("x509_ca_cert", "x509_ca_key", "ca_file")
    @classmethod
    def _a_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"{path} is not a file")
        return path

    @field_validator("x509_ca_key")
    @classmethod
    def _pair(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if "x509_ca_cert" in info.data and (key is None) != (info.data["x509_ca_cert"] is None):
            raise ValueError("give both x509_ca_cert and x509_ca_key, or neither")
        if key is not None and not info.data.get("id_scope"):
            raise ValueError("an X.509 enrollment CA needs iotc.id_scope")
        return key

    @field_validator("reconnect_max", "approval_retry_max")
    @classmethod
    def _ceiling(cls, ceiling: float, info: ValidationInfo) -> float:
        floor = "reconnect_min" if info.field_name == "reconnect_max" else "approval_retry"
        if ceiling < info.data.get(floor, 0.0):
            raise ValueError(f"must be at least iotc.{floor}")
        return ceiling

    @property
    def configured(self) -> bool:
        # Connection strings live in the store, not here: without hub_only nothing says a real hub is meant.
        return self.hub_only or bool(self.id_scope and (self.group_key or self.x509_ca_cert))


@dataclass(frozen=True, slots=True, config=SECTION)
class EmulatorSettings:
    """The embedded IoT Central emulator, started when no IoT Central is configured."""

    host: str = Field(default="127.0.0.1", min_length=1, description="address of the embedded emulator")
    mqtt_port: Port = Field(default=8883, description="its DPS and IoT Hub MQTT (TLS) port")
    http_port: Port = Field(default=8080, description="its REST API port")
    https_port: Port = Field(default=8443, description="its hub's HTTPS device API port (ephemeral devices)")

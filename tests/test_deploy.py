"""The deployment files agree with the programs they run: each compose service's command parses with the
CLI, its environment is made of real settings, and its published ports are the ports it listens on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.cli import build_parser as emulator_parser
from emulator.config import load_config
from translator.cli import build_parser
from translator.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def published(service: dict[str, Any]) -> set[str]:
    """Container-side ports, as `5683/udp` or `9100` (tcp)."""
    ports = set()
    for mapping in service.get("ports", []):
        container = str(mapping).split(":")[-1]
        ports.add(container if "/" in container else f"{container}")
    return ports


def test_emulator_service(compose: dict[str, Any]) -> None:
    service = compose["services"]["emulator"]
    command = service["command"]
    assert command[0] == "emulator"
    args = emulator_parser("emulator").parse_args(command[1:])
    config = load_config(
        environ={k: str(v) for k, v in service.get("environment", {}).items()},
        overrides={"mqtt_port": args.mqtt_port, "http_port": args.http_port, "hub_names": args.hub_names},
    )
    assert published(service) == {str(config.mqtt_port), str(config.http_port)}
    assert args.host == "0.0.0.0"  # reachable from the translator's container
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert args.state_dir is not None and str(args.state_dir) in mounts


def test_translator_service(compose: dict[str, Any], tmp_path: Path) -> None:
    service = compose["services"]["translator"]
    command = service["command"]
    args = build_parser().parse_args(command)
    assert args.command == "serve"
    environment = {k: str(v) for k, v in service["environment"].items()}
    # The CA file only exists once the emulator ran; point the check at a stand-in.
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("stand-in")
    environment["IOTC_TRANSLATOR_IOTC_CA_FILE"] = str(ca_file)
    settings = load_settings(
        environ=environment,
        overrides={
            "coap.port": args.coap_port,
            "operations.port": args.operations_port,
            "state_dir": args.state_dir,
        },
    )
    assert published(service) == {
        f"{settings.coap.port}/udp",
        f"{settings.coap.dtls_port}/udp",
        str(settings.operations.port),
    }
    assert settings.operations.host == "0.0.0.0"
    assert settings.iotc.configured
    # It trusts the emulator's CA from the emulator's volume, and dials the emulator's service name.
    emulator = compose["services"]["emulator"]
    emulator_args = emulator_parser("emulator").parse_args(emulator["command"][1:])
    assert service["environment"]["IOTC_TRANSLATOR_IOTC_CA_FILE"] == f"{emulator_args.state_dir}/ca.pem"
    assert settings.iotc.gateway_host == settings.iotc.dps_host == "emulator"
    assert "emulator" in emulator_args.hub_names.split(",")  # so the emulator's certificate names it
    assert settings.iotc.group_key == emulator["environment"]["IOTC_EMULATOR_GROUP_PRIMARY_KEY"]
    assert settings.iotc.id_scope == emulator["environment"]["IOTC_EMULATOR_ID_SCOPE"]
    assert service["depends_on"]["emulator"]["condition"] == "service_healthy"
    mounts = {volume.split(":")[1] for volume in service["volumes"]}
    assert str(args.state_dir) in mounts


def test_unauthenticated_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    """The emulator's REST API (group and device keys) and the translator's metrics listen on all
    interfaces inside their containers, so the host side of the mapping is what keeps them private."""
    services = compose["services"]
    for name, port in (("emulator", "8080"), ("translator", "9100")):
        mappings = [str(m) for m in services[name]["ports"] if str(m).split(":")[-1] == port]
        assert mappings == [f"127.0.0.1:{port}:{port}"], (name, mappings)
    # Devices must reach CoAP, and MQTT clients the emulator's TLS port (authenticated by SAS or X.509).
    assert "5683:5683/udp" in services["translator"]["ports"]
    assert "8883:8883" in services["emulator"]["ports"]


def test_dockerfile_runs_the_cli() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["iotc-translator"]' in text
    assert "EXPOSE 5683/udp 5684/udp 9100 8883 8080" in text
    for folder in ("translator", "emulator", "codecs"):
        assert f"COPY {folder} ./{folder}" in text

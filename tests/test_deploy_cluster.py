"""The compose profile `cluster` (issue 17 §7): Redis with the outbox's durability, two translators on it
with their own node ids and no published ports, and nginx balancing UDP by source address and port to both.
The nginx config it mounts is checked by nginx itself (`nginx -t`, upstreams rewritten to loopback) and
the compose file by docker-compose, where installed; no Docker engine is needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from translator.cli import build_parser
from translator.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx")
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")  # Debian's libnginx-mod-stream
COMPOSE = shutil.which("docker-compose")
TRANSLATORS = ("translator-1", "translator-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def _cluster(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if "cluster" in service.get("profiles", [])
    }


def _balancer_config(compose: dict[str, Any]) -> Path:
    mounts = compose["services"]["balancer"]["volumes"]
    (source,) = (m.split(":")[0] for m in mounts if m.split(":")[1] == "/etc/nginx/cluster.conf")
    return REPO / str(source)


def test_the_demo_stays_the_default(compose: dict[str, Any]) -> None:
    default = {name for name, service in compose["services"].items() if not service.get("profiles")}
    assert default == {"emulator", "translator"}
    assert set(_cluster(compose)) == {"redis", *TRANSLATORS, "balancer"}


def test_redis_keeps_every_acknowledged_message(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes" and options["--appendfsync"] == "always"


def test_two_translators_on_redis_each_its_own_node(compose: dict[str, Any], tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"  # exists once the emulator ran; a stand-in for the settings' check
    ca_file.write_text("stand-in")
    nodes = set()
    for name in TRANSLATORS:
        service = compose["services"][name]
        args = build_parser().parse_args(service["command"])
        assert args.command == "serve"
        environment = {k: str(v) for k, v in service["environment"].items()}
        environment["IOTC_TRANSLATOR_IOTC_CA_FILE"] = str(ca_file)
        settings = load_settings(
            environ=environment, overrides={"coap.port": args.coap_port, "state_dir": args.state_dir}
        )
        assert settings.store.redis_url == "redis://redis:6379/0"
        assert settings.iotc.configured and settings.iotc.dps_host == "emulator"
        nodes.add(settings.store.node_id)
        assert "ports" not in service, "devices reach the translators through the balancer only"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        state = {v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == "/state/translator"}
        assert len(state) == 1
    assert nodes == set(TRANSLATORS), "stable node ids, one per translator"
    volumes = [compose["services"][name]["volumes"][0] for name in TRANSLATORS]
    assert len(set(volumes)) == len(TRANSLATORS), "each translator its own state volume"


def _upstreams(config: str) -> dict[str, tuple[str, list[str]]]:
    """upstream name → (its hash directive, its servers)."""
    found = {}
    for name, body in re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", config):
        hashed = re.search(r"^\s*hash\s+([^;]+);", body, re.M)
        servers = re.findall(r"^\s*server\s+([^;\s]+)", body, re.M)
        found[name] = (hashed.group(1) if hashed else "", servers)
    return found


def test_the_balancer_hashes_source_address_and_port_to_both(compose: dict[str, Any]) -> None:
    config = _balancer_config(compose).read_text()
    upstreams = _upstreams(config)
    assert set(upstreams) == {"translators_coap", "translators_dtls"}
    for port, name in ((5683, "translators_coap"), (5684, "translators_dtls")):
        hashed, servers = upstreams[name]
        assert hashed == "$remote_addr$remote_port consistent"
        assert servers == [f"{t}:{port}" for t in TRANSLATORS]
        assert re.search(rf"listen\s+{port}\s+udp;\s*proxy_pass\s+{name};", config)
    directives = re.sub(r"#.*", "", config)
    assert "proxy_responses" not in directives, "downlinks are not one answer per request"
    published = set(compose["services"]["balancer"]["ports"])
    assert published == {"5783:5683/udp", "5784:5684/udp"}


def _on_loopback(config: str, tmp_path: Path) -> str:
    """The same config, runnable here: upstreams and listeners on loopback, pid in tmp, the stream module
    loaded the Debian way when that is how this nginx has it."""
    config = re.sub(r"server\s+translator-\d:(\d+)", r"server 127.0.0.1:\1", config)
    config = re.sub(r"listen\s+(\d+)\s+udp;", lambda m: f"listen 127.0.0.1:{int(m[1]) + 20000} udp;", config)
    config = re.sub(r"^pid\s+[^;]+;", f"pid {tmp_path / 'nginx.pid'};", config, flags=re.M)
    config = re.sub(r"^error_log\s+[^;]+;", f"error_log {tmp_path / 'error.log'};", config, flags=re.M)
    if STREAM_MODULE.exists():
        config = f"load_module {STREAM_MODULE};\n{config}"
    return config


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt nginx-light libnginx-mod-stream)")
def test_nginx_accepts_the_balancer_config(compose: dict[str, Any], tmp_path: Path) -> None:
    assert NGINX is not None
    config = tmp_path / "cluster.conf"
    config.write_text(_on_loopback(_balancer_config(compose).read_text(), tmp_path))
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


@pytest.mark.skipif(COMPOSE is None, reason="docker-compose is not installed (apt docker-compose)")
def test_docker_compose_reads_the_cluster_profile() -> None:
    assert COMPOSE is not None
    checked = subprocess.run(
        [COMPOSE, "--profile", "cluster", "config", "--quiet"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr

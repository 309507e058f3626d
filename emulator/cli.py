"""`python -m emulator` and `iotc-translator emulator`: run the IoT Central emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from emulator.app import Emulator
from emulator.config import ConfigError, load_config

# The options that are secrets: read from a file (or IOTC_EMULATOR_<NAME>); the flag itself still works,
# with a warning, since the process list shows it to every user.
SECRETS = {
    "group_primary_key": "SAS group enrollment primary key (base64)",
    "group_secondary_key": "SAS group enrollment secondary key (base64)",
    "api_token": "Authorization header the REST API requires",
}


class SecretError(ValueError):
    pass


def _secret_flags(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    flag = "--" + name.replace("_", "-")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        flag + "-file",
        dest=name + "_file",
        type=Path,
        metavar="FILE",
        help=f"read the {what} from FILE (or IOTC_EMULATOR_{name.upper()}; default: generated, kept in "
        "the state directory)",
    )
    choice.add_argument(flag, dest=name, help=f"the secret itself: visible in `ps`; prefer {flag}-file")


def secrets_of(args: argparse.Namespace, warn: Callable[[str], None]) -> dict[str, str | None]:
    """Each secret from its file, or its flag (with a warning); None when neither was given."""
    found: dict[str, str | None] = {}
    for name in SECRETS:
        flag = "--" + name.replace("_", "-")
        given, file = getattr(args, name), getattr(args, name + "_file")
        if given is not None:
            warn(
                f"warning: {flag} puts the secret in the process list (ps) for every user; use "
                f"{flag}-file or IOTC_EMULATOR_{name.upper()}"
            )
            found[name] = str(given)
        elif file is not None:
            try:
                found[name] = file.read_text().strip()
            except OSError as error:
                raise SecretError(f"{flag}-file: {error}") from None
        else:
            found[name] = None
    return found


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "A local stand-in for Azure IoT Central: DPS and the IoT Hub device endpoint over TLS MQTT "
            "(one listener; the CONNECT username tells DPS from hub traffic) and a REST API shaped like "
            "IoT Central's. Every option can also be set as IOTC_EMULATOR_<NAME> or in a TOML file; "
            "secrets (the group keys, the API token) from a file or the environment, not a flag, which every "
            "user sees in `ps`."
        ),
        epilog=f"""examples:
  {prog} --state-dir state/emulator
  {prog} --config emulator.toml --no-limits
  IOTC_EMULATOR_API_TOKEN="$(cat token)" {prog}
  {prog} --group-primary-key-file primary.key --api-token-file token""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML file ([emulator] table or top-level keys)")
    parser.add_argument("--state-dir", type=Path, help="where keys, certificates and devices are kept")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, help="TLS MQTT port for DPS and hub (default 8883)")
    parser.add_argument("--http-port", type=int, help="REST API port (default 8080)")
    parser.add_argument(
        "--https-port",
        type=int,
        help="the hub's HTTPS device API port (default 8443; 443 on a real hub)",
    )
    parser.add_argument("--id-scope", help="DPS ID scope (generated once when absent)")
    for name, what in SECRETS.items():
        _secret_flags(parser, name, what)
    parser.add_argument("--x509-enrollment-ca", type=Path, help="PEM CA certificate of an X.509 enrollment")
    parser.add_argument("--hub-names", help="comma-separated hub host names devices are assigned across")
    parser.add_argument("--dps-retry-after", type=int, help="retry-after DPS tells devices (seconds)")
    parser.add_argument("--dps-assign-delay", type=float, help="how long an assignment takes (seconds)")
    parser.add_argument("--method-timeout", type=float, help="command timeout (seconds, default 30)")
    parser.add_argument(
        "--no-auth", dest="auth", action="store_false", default=None, help="REST API without Authorization"
    )
    parser.add_argument(
        "--rest-rate-limit",
        type=float,
        help="REST requests per second per application before 429 (IoT Central: 20; 0 turns it off)",
    )
    parser.add_argument(
        "--no-limits",
        dest="limits",
        action="store_const",
        const=False,
        help="turn off the service limits (DPS, hub and IoT Central rates and sizes), e.g. for benchmarks",
    )
    parser.add_argument("--hub-tier", help="IoT Hub tier whose throttles apply: S1 (default), S2, S3")
    parser.add_argument("--hub-units", type=int, help="IoT Hub units (throttles scale with them)")
    parser.add_argument(
        "--dps-registrations-per-minute", type=float, help="DPS registration quota (default 200/min)"
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    return parser


async def _serve(emulator: Emulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await emulator.start()
    # A benchmark's stand-in hub must not add pauses of its own: its telemetry log keeps up to 100k events,
    # whose churn made CPython's default thresholds run a collection over them every few seconds (68 pauses
    # over 5 ms, up to 150 ms, in 90 s at 3.5k msg/s). Start-up objects are frozen and young collections
    # made rare; the log's churn is net zero, so garbage is still freed by reference counting.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    info = emulator.info()
    print(json.dumps({"event": "ready", **info}), flush=True)
    print(
        f"IoT Central emulator ready.\n"
        f"  ID scope:          {info['idScope']}\n"
        f"  group primary key: {info['groupPrimaryKey']}\n"
        f"  DPS + hub (MQTT):  mqtts://{info['host']}:{info['mqttPort']}  hubs: {', '.join(info['hubs'])}\n"
        f"  hub HTTPS devices: https://{info['host']}:{info['httpsPort']}/devices/{{id}}/messages/events\n"
        f"  REST API:          http://{info['host']}:{info['httpPort']}/api/devices?api-version={info['apiVersion']}\n"
        f"  API token:         {info['apiToken'] or '(auth off)'}\n"
        f"  CA certificate:    {info['caPath']}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: Sequence[str] | None = None, prog: str = "python -m emulator") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    overrides = {
        name: getattr(args, name)
        for name in (
            "state_dir",
            "host",
            "mqtt_port",
            "http_port",
            "https_port",
            "id_scope",
            "x509_enrollment_ca",
            "hub_names",
            "dps_retry_after",
            "dps_assign_delay",
            "method_timeout",
            "auth",
            "rest_rate_limit",
            "limits",
            "hub_tier",
            "hub_units",
            "dps_registrations_per_minute",
        )
    }
    try:
        overrides.update(secrets_of(args, lambda line: print(f"emulator: {line}", file=sys.stderr)))
        config = load_config(file=args.config, overrides=overrides)
    except (ConfigError, SecretError) as error:
        print(f"emulator: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(Emulator(config)))
    except OSError as error:
        print(f"emulator: cannot start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0

"""`iotc-translator simulate`: a fleet of simulated LwM2M devices against an LwM2M server."""

from __future__ import annotations

import argparse
import sys

from translator.cli_help import Commands, HelpFormatter, examples


def add_simulate_command(commands: Commands) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run simulated LwM2M devices against an LwM2M server",
        description="Simulated LwM2M clients (registration, observations, Sends of a temperature).",
        epilog=examples(
            "iotc-translator simulate --devices 10 --interval 5",
            "iotc-translator simulate --server coaps://127.0.0.1:5684 --psk-key 000102030405",
            "iotc-translator simulate --queue --lwm2m 1.2 --duration 60",
        ),
        formatter_class=HelpFormatter,
    )
    simulate.add_argument("--devices", type=int, default=1, metavar="N", help="how many devices")
    simulate.add_argument("--server", default="coap://127.0.0.1:5683", metavar="URI", help="LwM2M server URI")
    simulate.add_argument("--prefix", default="sim", help="endpoint names: PREFIX-00000, ...")
    simulate.add_argument("--interval", type=float, default=10.0, help="seconds between Sends per device")
    simulate.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: never)"
    )
    simulate.add_argument("--lifetime", type=int, default=300, help="registration lifetime (s)")
    simulate.add_argument("--lwm2m", default="1.1", choices=("1.0", "1.1", "1.2"), help="LwM2M version")
    simulate.add_argument("--queue", action="store_true", help="register in queue mode (Q)")
    simulate.add_argument(
        "--psk-key",
        default=None,
        metavar="HEX",
        help="DTLS PSK of every device (identity: its endpoint name)",
    )
    simulate.set_defaults(run=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    from urllib.parse import urlsplit

    from translator.coap.simulator import SimulatorOptions, run_fleet

    uri = urlsplit(args.server)
    if uri.scheme not in ("coap", "coaps") or not uri.hostname:
        print("iotc-translator: --server must be coap://host[:port] or coaps://host[:port]", file=sys.stderr)
        return 2
    try:
        psk_key = bytes.fromhex(args.psk_key) if args.psk_key else None
    except ValueError:
        print("iotc-translator: --psk-key must be hex", file=sys.stderr)
        return 2
    if (uri.scheme == "coaps") != (psk_key is not None):
        print("iotc-translator: coaps:// goes with --psk-key (and --psk-key with coaps://)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = SimulatorOptions(version=args.lwm2m, lifetime=args.lifetime, queue_mode=args.queue)
    try:
        sent = asyncio.run(
            run_fleet(
                (uri.hostname, uri.port or (5684 if psk_key else 5683)),
                args.devices,
                prefix=args.prefix,
                interval=args.interval,
                duration=args.duration,
                options=options,
                psk_key=psk_key,
            )
        )
    except KeyboardInterrupt:
        return 130
    print(f"{sent} Sends acknowledged")
    return 0

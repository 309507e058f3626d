"""The `iotc-translator` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotc-translator",
        description="Protocol translation server between CoAP/LwM2M devices and Azure IoT Central.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "emulator",
        help="run the built-in IoT Central emulator (DPS + IoT Hub MQTT over TLS + REST API)",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "emulator":
        # The emulator owns its own options; it is a separate program that shares no code with us.
        from emulator.cli import main as emulator_main

        return emulator_main(args[1:], prog="iotc-translator emulator")
    parser = build_parser()
    parser.parse_args(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `iotc-translator` command line: the top-level parser and the dispatch to a subcommand. Each
subcommand group's flags and its running live in its own module (cli_serve, cli_devices, cli_template,
cli_simulate, cli_codec; cli_settings: the settings flags and `config`); each leaf parser names the
function that runs it (`set_defaults(run=...)`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from translator.cli_codec import add_codec_command
from translator.cli_devices import add_devices_command
from translator.cli_help import HelpFormatter, examples
from translator.cli_serve import add_serve_command
from translator.cli_settings import add_config_command
from translator.cli_simulate import add_simulate_command
from translator.cli_template import add_template_command


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iotc-translator")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotc-translator",
        description="Protocol translation server between CoAP/LwM2M devices and Azure IoT Central.",
        epilog=examples(
            "iotc-translator serve --help",
            "iotc-translator serve                      # on the built-in emulator",
            "iotc-translator serve --config translator.toml",
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "emulator",
        help="run the built-in IoT Central emulator (DPS + IoT Hub MQTT over TLS + REST API)",
        add_help=False,
    )
    # The order here is the order `--help` lists them in.
    add_template_command(commands)
    add_simulate_command(commands)
    add_serve_command(commands)
    add_codec_command(commands)
    add_config_command(commands)
    add_devices_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "emulator":
        # The emulator owns its own options; it is a separate program that shares no code with us.
        from emulator.cli import main as emulator_main

        return emulator_main(args[1:], prog="iotc-translator emulator")
    parser = build_parser()
    parsed = parser.parse_args(args)
    run: Callable[[argparse.Namespace], int] | None = getattr(parsed, "run", None)
    if run is None:
        parser.print_help()
        return 2
    return run(parsed)


if __name__ == "__main__":
    sys.exit(main())

"""The settings on the command line: the flags serve and the devices actions share, how they become
`Settings` (file, then environment, then flags), and `config reference`, which lists every setting."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translator.cli_help import Commands, HelpFormatter, examples, from_settings
from translator.settings import Settings, SettingsError, load_settings


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings file (TOML)")
    parser.add_argument(
        "--state-dir",
        help=f"where the store, certificates and the emulator's state live {from_settings('state_dir')}",
    )
    parser.add_argument(
        "--coap-host",
        help=f"address the LwM2M server binds (:: is IPv4 and IPv6) {from_settings('coap.host')}",
    )
    parser.add_argument("--coap-port", type=int, help=f"LwM2M UDP port {from_settings('coap.port')}")
    parser.add_argument(
        "--id-scope",
        help=f"IoT Central ID scope (none: the built-in emulator) {from_settings('iotc.id_scope')}",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--group-key-file",
        type=Path,
        metavar="FILE",
        help="read the IoT Central SAS group enrollment key from FILE (or IOTC_TRANSLATOR_IOTC_GROUP_KEY)",
    )
    secret.add_argument(
        "--group-key", help="the key itself: visible to every user in `ps`; prefer --group-key-file"
    )
    parser.add_argument(
        "--operations-port", type=int, help=f"/metrics and /healthz port {from_settings('operations.port')}"
    )
    parser.add_argument("--log-level", help=f"DEBUG, INFO, WARNING or ERROR {from_settings('log_level')}")


def _group_key(args: argparse.Namespace) -> str | None:
    if args.group_key is not None:
        print(
            "iotc-translator: warning: --group-key puts the key in the process list (ps) for every user; "
            "use --group-key-file or IOTC_TRANSLATOR_IOTC_GROUP_KEY",
            file=sys.stderr,
        )
        return str(args.group_key)
    if args.group_key_file is not None:
        try:
            return str(args.group_key_file.read_text().strip())
        except OSError as error:
            raise SettingsError(f"iotc.group_key: --group-key-file: {error}") from None
    return None


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        "state_dir": args.state_dir,
        "coap.host": args.coap_host,
        "coap.port": args.coap_port,
        "iotc.id_scope": args.id_scope,
        "iotc.group_key": _group_key(args),
        "operations.port": args.operations_port,
        "log_level": args.log_level,
        "workers": getattr(args, "workers", None),
    }
    return load_settings(file=args.config, overrides=overrides)


def settings_or_say_why(args: argparse.Namespace, blame: str = "configuration error: ") -> Settings | None:
    """The settings, or None once the error is on stderr (the caller exits 2)."""
    try:
        return settings_from(args)
    except SettingsError as error:
        print(f"iotc-translator: {blame}{error}", file=sys.stderr)
        return None


def add_config_command(commands: Commands) -> None:
    config = commands.add_parser("config", help="the settings serve and devices import read")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    reference = config_commands.add_parser(
        "reference",
        help="print every setting with its default and bounds (the README's table)",
        epilog=examples("iotc-translator config reference > settings.md"),
        formatter_class=HelpFormatter,
    )
    reference.set_defaults(run=_config_reference)


def _config_reference(args: argparse.Namespace) -> int:
    from translator.settings_reference import reference

    sys.stdout.write(reference(Settings))
    return 0

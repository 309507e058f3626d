"""`iotc-translator codec check`: codec files loaded as serve loads them, each one's problems printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translator.cli_help import Commands


def add_codec_command(commands: Commands) -> None:
    codec = commands.add_parser("codec", help="codec files (TOML): check them before serve loads them")
    codec_commands = codec.add_subparsers(dest="codec_command", metavar="ACTION", required=True)
    checking = codec_commands.add_parser(
        "check",
        help="load codec files as serve does; print each one's problems (file:line: field: reason)",
        description="Exit status 1 when any file has a problem. "
        "Example: iotc-translator codec check codecs/*.toml",
    )
    checking.add_argument("files", nargs="+", type=Path, metavar="FILE")
    checking.add_argument(
        "--ddf", type=Path, metavar="DIR", help="object definitions (DDF XML) to add (codec.ddf_directory)"
    )
    checking.set_defaults(run=_codec_check)


def _codec_check(args: argparse.Namespace) -> int:
    from translator.codec_check import check_files
    from translator.lwm2m import ObjectRegistry

    registry = ObjectRegistry.builtin() if args.ddf is None else ObjectRegistry.with_ddf_directory(args.ddf)
    lines, failed = check_files(args.files, registry)
    for line in lines:
        print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
    return 1 if failed else 0

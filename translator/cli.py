"""The `iotc-translator` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


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
    template = commands.add_parser("template", help="device templates (DTDL v2) for IoT Central")
    template_commands = template.add_subparsers(dest="template_command", metavar="ACTION", required=True)
    export = template_commands.add_parser(
        "export",
        help="print the device template of a codec file, or of the default codec for an object list",
    )
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--codec", type=Path, metavar="FILE", help="a codec file (TOML), e.g. codecs/3303.toml"
    )
    source.add_argument(
        "--objects",
        metavar="LINKS",
        help='object instances as in a registration payload, e.g. "</3/0>,</3303/0>" (default codec)',
    )
    export.add_argument(
        "--ddf", type=Path, metavar="DIR", help="also load the object definitions (DDF XML) of this directory"
    )
    export.add_argument(
        "--overrides",
        type=Path,
        metavar="DIR",
        help="with --objects: codec files whose object mappings replace the generated ones",
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")
    return parser


def _template_export(args: argparse.Namespace) -> int:
    from translator.codec import CodecError, default_codec, export_template, load_codec
    from translator.lwm2m import DdfError, Lwm2mFormatError, ObjectRegistry, parse_registration

    try:
        registry = ObjectRegistry.with_ddf_directory(args.ddf) if args.ddf else ObjectRegistry.builtin()
        if args.codec is not None:
            codec = load_codec(args.codec, registry)
        else:
            registered = parse_registration(args.objects)
            if not registered.instances:
                print("iotc-translator: --objects lists no object instances (</3/0>)", file=sys.stderr)
                return 2
            overrides = (
                [load_codec(p, registry) for p in sorted(args.overrides.glob("*.toml"))]
                if args.overrides
                else []
            )
            codec = default_codec(
                registered.instances, registry, versions=registered.objects, overrides=overrides
            )
        document = json.dumps(export_template(codec), indent=2, ensure_ascii=False) + "\n"
    except (CodecError, DdfError, Lwm2mFormatError, OSError) as exc:
        print(f"iotc-translator: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(document)
    else:
        args.output.write_text(document, encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "emulator":
        # The emulator owns its own options; it is a separate program that shares no code with us.
        from emulator.cli import main as emulator_main

        return emulator_main(args[1:], prog="iotc-translator emulator")
    parser = build_parser()
    parsed = parser.parse_args(args)
    if parsed.command == "template" and parsed.template_command == "export":
        return _template_export(parsed)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""`iotc-translator template export`: the device template serve announces, for an object list, a device or
the fleet in the store, a codec file, or the gateway."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from translator.cli_help import Commands, HelpFormatter, examples
from translator.settings import SettingsError, load_settings


def add_template_command(commands: Commands) -> None:
    template = commands.add_parser("template", help="device templates (DTDL v2) for IoT Central")
    template_commands = template.add_subparsers(dest="template_command", metavar="ACTION", required=True)
    export = template_commands.add_parser(
        "export",
        help="print the device template serve announces for an object list or a known device, or of a codec",
        description="With --objects or --device, the codec is resolved exactly as serve resolves it (same "
        "settings: --config, IOTC_TRANSLATOR_* environment, codec directory), so the exported root @id is "
        "the model id serve announces; it is printed on stderr.",
        epilog=examples(
            'iotc-translator template export --objects "</3/0>,</3303/0>" -o model.json',
            "iotc-translator template export --device urn:imei:359 --format template",
            "iotc-translator template export --codec codecs/3303.toml",
        ),
        formatter_class=HelpFormatter,
    )
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--codec", type=Path, metavar="FILE", help="a codec file (TOML), e.g. codecs/3303.toml"
    )
    source.add_argument(
        "--objects",
        metavar="LINKS",
        help='object instances as in a registration payload, e.g. "</3/0>,</3303/0>"',
    )
    source.add_argument(
        "--device",
        metavar="DEVICE_ID",
        help="a device (id or endpoint) that registered with this translator: its template, from the store",
    )
    source.add_argument(
        "--fleet",
        action="store_true",
        help="with codec.model_id set: one template for every registration in the store (objects' union)",
    )
    source.add_argument(
        "--gateway",
        action="store_true",
        help="the gateway device's template (gateway.model_id): health telemetry, properties, commands and "
        "its relationship to downstream devices ([gateway] enabled = true)",
    )
    export.add_argument("--config", type=Path, metavar="FILE", help="settings file (TOML), as for serve")
    export.add_argument("--state-dir", help="with --device: where serve keeps its store")
    export.add_argument(
        "--ddf", type=Path, metavar="DIR", help="object definitions (DDF XML) to add (codec.ddf_directory)"
    )
    export.add_argument(
        "--overrides",
        type=Path,
        metavar="DIR",
        help="codec files whose object mappings replace the generated ones (codec.directory; default: "
        "the settings' codec directory, ./codecs)",
    )
    export.add_argument(
        "--format",
        choices=("model", "template"),
        default="model",
        help="model: the DTDL v2 interfaces (import in the UI); template: the device template JSON the "
        "IoT Central REST API publishes (PUT /api/deviceTemplates/{model id}), with durable commands",
    )
    export.add_argument(
        "--queue",
        action="store_true",
        help="with --objects: the devices sleep (LwM2M queue mode): commands are durable (queue if offline)",
    )
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of stdout")
    export.set_defaults(run=_template_export)


def _gateway_export(args: argparse.Namespace, model_id: str) -> int:
    from translator.gateway.model import gateway_interface, gateway_template

    exported = gateway_template(model_id) if args.format == "template" else [gateway_interface(model_id)]
    document = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
    if args.output is not None:
        args.output.write_text(document, encoding="utf-8")
    else:
        sys.stdout.write(document)
    print(f"model id: {model_id}", file=sys.stderr)
    return 0


def _template_export(args: argparse.Namespace) -> int:
    import asyncio

    from translator.bridge.codecs import CodecCatalog
    from translator.codec import CodecError, device_template, export_template, load_codec
    from translator.codec.coverage import untranslated
    from translator.lwm2m import DdfError, Lwm2mFormatError
    from translator.lwm2m import Path as LwPath
    from translator.store import StoreError
    from translator.template_export import ExportError, Resolved, for_device, for_fleet, for_objects

    try:
        settings = load_settings(
            file=args.config,
            overrides={
                "state_dir": args.state_dir,
                "codec.directory": args.overrides,
                "codec.ddf_directory": args.ddf,
            },
        )
        catalog = CodecCatalog.from_settings(settings.codec)
        if not settings.codec.directory.is_dir() and args.codec is None:
            print(
                f"iotc-translator: warning: codec directory {settings.codec.directory} not found (from "
                f"{Path.cwd()}): the default codec alone, as serve would do here",
                file=sys.stderr,
            )
        if args.gateway:
            return _gateway_export(args, settings.gateway.model_id)
        if args.codec is not None:
            codec = load_codec(args.codec, catalog.registry)
            objects = tuple(LwPath(o, 0) for o in sorted({e.pattern.object_id for e in codec.entries()}))
            resolved = Resolved(codec, objects, queue_mode=args.queue)
        elif args.objects is not None:
            resolved = for_objects(catalog, args.objects, queue_mode=args.queue)
        elif args.fleet:
            resolved = asyncio.run(for_fleet(settings, catalog))
        else:
            resolved = asyncio.run(for_device(settings, catalog, args.device))
        codec = resolved.codec
        exported = (
            device_template(codec, queue_mode=resolved.queue_mode)
            if args.format == "template"
            else export_template(codec)
        )
        document = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
        missing = untranslated(codec, resolved.instances, catalog.registry)
        if missing:
            print(f"iotc-translator: not translated: {missing.describe()}", file=sys.stderr)
    except SettingsError as error:
        print(f"iotc-translator: configuration error: {error}", file=sys.stderr)
        return 2
    except ExportError as error:
        print(f"iotc-translator: {error}", file=sys.stderr)
        return 2
    except (CodecError, DdfError, Lwm2mFormatError, StoreError, OSError) as exc:
        print(f"iotc-translator: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(document)
    else:
        args.output.write_text(document, encoding="utf-8")
    print(f"model id: {codec.model_id}", file=sys.stderr)
    return 0

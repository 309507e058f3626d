"""The `iotc-translator` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from translator.cli_help import HelpFormatter, examples, from_settings
from translator.settings import Settings, SettingsError, load_settings


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
    serve = commands.add_parser(
        "serve",
        help="run the translator (with no IoT Central configured: on the built-in emulator)",
        description="Settings come from --config (TOML), then IOTC_TRANSLATOR_<SECTION>_<NAME>, then flags "
        "(`iotc-translator config reference` lists every setting).",
        epilog=examples(
            "iotc-translator serve                      # the built-in emulator, SQLite in ./state",
            "iotc-translator serve --config translator.toml --coap-port 5684",
            "IOTC_TRANSLATOR_IOTC_GROUP_KEY=... iotc-translator serve --id-scope 0ne00ABC",
            "iotc-translator serve --id-scope 0ne00ABC --group-key-file group.key",
        ),
        formatter_class=HelpFormatter,
    )
    _settings_flags(serve)
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N translator processes on the same ports (SO_REUSEPORT) under one supervisor; N > 1 needs "
        "store.redis_url (default 1)",
    )
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
    config = commands.add_parser("config", help="the settings serve and devices import read")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_commands.add_parser(
        "reference",
        help="print every setting with its default and bounds (the README's table)",
        epilog=examples("iotc-translator config reference > settings.md"),
        formatter_class=HelpFormatter,
    )
    devices = commands.add_parser("devices", help="manage pre-registered devices")
    device_commands = devices.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    importing = device_commands.add_parser(
        "import",
        help="import devices from a CSV file (like IoT Central's)",
        epilog=examples(
            "iotc-translator devices import devices.csv",
            "iotc-translator devices import devices.csv --config translator.toml",
        ),
        formatter_class=HelpFormatter,
    )
    importing.add_argument("csv", type=Path, help="deviceId,endpoint,codec,modelId,symmetricKey,... per line")
    _settings_flags(importing)
    forgetting = device_commands.add_parser(
        "remove-psk",
        help="remove endpoints' DTLS PSKs (new handshakes fail at once; no restart)",
        epilog=examples("iotc-translator devices remove-psk urn:imei:359 urn:imei:360"),
        formatter_class=HelpFormatter,
    )
    forgetting.add_argument("endpoints", nargs="+", metavar="ENDPOINT")
    _settings_flags(forgetting)
    return parser


def _settings_flags(parser: argparse.ArgumentParser) -> None:
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


def _settings(args: argparse.Namespace) -> Settings:
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


def _codec_check(args: argparse.Namespace) -> int:
    from translator.codec_check import check_files
    from translator.lwm2m import ObjectRegistry

    registry = ObjectRegistry.builtin() if args.ddf is None else ObjectRegistry.with_ddf_directory(args.ddf)
    lines, failed = check_files(args.files, registry)
    for line in lines:
        print(line, file=sys.stderr if line.startswith("error:") else sys.stdout)
    return 1 if failed else 0


def _serve(args: argparse.Namespace) -> int:

    from translator.codec import CodecError
    from translator.ops.logs import configure_logging
    from translator.serve import run

    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"iotc-translator: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, log_sql=settings.log_sql, log_format=settings.log_format)
    if settings.workers > 1:
        from translator.workers.supervisor import supervise

        return supervise(settings)
    try:
        run(settings)
    except CodecError as error:
        print(f"iotc-translator: codec error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"iotc-translator: cannot start: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _devices_import(args: argparse.Namespace) -> int:
    import asyncio

    from translator.device_import import ImportError_, parse_devices_csv
    from translator.store.factory import describe, opened, store_from_settings

    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"iotc-translator: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        devices = parse_devices_csv(args.csv.read_text())
    except (ImportError_, OSError) as error:
        print(f"iotc-translator: {args.csv}: {error}", file=sys.stderr)
        return 2

    async def store_them() -> None:
        async with opened(store_from_settings(settings)) as store:
            for device in devices:
                await store.put_device(device.entry)
                if device.assignment is not None:
                    await store.put_assignment(device.entry.device_id, device.assignment)
                if device.psk is not None:
                    await store.put_psk(device.psk)

    asyncio.run(store_them())
    print(f"imported {len(devices)} devices into {describe(settings)}")
    return 0


def _remove_psk(args: argparse.Namespace) -> int:
    import asyncio

    from translator.store import SqliteStore

    try:
        settings = _settings(args)
    except SettingsError as error:
        print(f"iotc-translator: {error}", file=sys.stderr)
        return 2

    async def remove() -> int:
        async with SqliteStore(settings.store_path) as store:
            known = [ep for ep in args.endpoints if await store.psk_for_endpoint(ep) is not None]
            for endpoint in known:
                await store.remove_psk(endpoint)
        return len(known)

    removed = asyncio.run(remove())
    print(f"removed the PSK of {removed} of {len(args.endpoints)} endpoints in {settings.store_path}")
    return 0 if removed == len(args.endpoints) else 1


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
    if parsed.command == "serve":
        return _serve(parsed)
    if parsed.command == "devices" and parsed.devices_command == "import":
        return _devices_import(parsed)
    if parsed.command == "devices" and parsed.devices_command == "remove-psk":
        return _remove_psk(parsed)
    if parsed.command == "simulate":
        return _simulate(parsed)
    if parsed.command == "codec" and parsed.codec_command == "check":
        return _codec_check(parsed)
    if parsed.command == "config" and parsed.config_command == "reference":
        from translator.settings_reference import reference

        sys.stdout.write(reference(Settings))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())

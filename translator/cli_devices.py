"""`iotc-translator devices`: importing pre-registered devices from a CSV file into the store, and removing
endpoints' DTLS PSKs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from translator.cli_help import Commands, HelpFormatter, examples
from translator.cli_settings import add_settings_flags, settings_or_say_why
from translator.settings import Settings


def add_devices_command(commands: Commands) -> None:
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
    add_settings_flags(importing)
    importing.set_defaults(run=_devices_import)
    forgetting = device_commands.add_parser(
        "remove-psk",
        help="remove endpoints' DTLS PSKs (new handshakes fail at once; no restart)",
        epilog=examples("iotc-translator devices remove-psk urn:imei:359 urn:imei:360"),
        formatter_class=HelpFormatter,
    )
    forgetting.add_argument("endpoints", nargs="+", metavar="ENDPOINT")
    add_settings_flags(forgetting)
    forgetting.set_defaults(run=_remove_psk)


def _devices_import(args: argparse.Namespace) -> int:
    import asyncio

    from translator.codec import CodecError
    from translator.device_import import ImportError_, parse_devices_csv
    from translator.lwm2m import DdfError
    from translator.store.factory import describe, opened, store_from_settings

    settings = settings_or_say_why(args)
    if settings is None:
        return 2
    try:
        devices = parse_devices_csv(args.csv.read_text())
    except (ImportError_, OSError) as error:
        print(f"iotc-translator: {args.csv}: {error}", file=sys.stderr)
        return 2
    try:
        _check_codecs(settings, [d.entry.codec for d in devices if d.entry.codec])
    except (CodecError, DdfError) as error:
        print(f"iotc-translator: {args.csv}: a codec it names: {error}", file=sys.stderr)
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


def _check_codecs(settings: Settings, files: list[str]) -> None:
    """Each codec file the rows name, loaded as serve loads it (against the same objects, DDF files
    included): a bad one is refused here with its file, line and field, not found at the device's
    registration, which the device would believe accepted while serve only logged the error. (The codec
    directory's files are serve's to check at its start.)"""
    from translator.bridge.codecs import CodecCatalog
    from translator.codec import load_codec

    registry = CodecCatalog.registry_for(settings.codec)
    for file in sorted(set(files)):
        load_codec(file, registry)


def _remove_psk(args: argparse.Namespace) -> int:
    import asyncio

    from translator.store import SqliteStore

    settings = settings_or_say_why(args, blame="")
    if settings is None:
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

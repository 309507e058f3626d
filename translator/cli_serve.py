"""`iotc-translator serve`: its flags and running the translator (one process, or workers under a
supervisor)."""

from __future__ import annotations

import argparse
import sys

from translator.cli_help import Commands, HelpFormatter, examples
from translator.cli_settings import add_settings_flags, settings_or_say_why


def add_serve_command(commands: Commands) -> None:
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
    add_settings_flags(serve)
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N translator processes on the same ports (SO_REUSEPORT) under one supervisor; N > 1 needs "
        "store.redis_url (default 1)",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from translator.codec import CodecError
    from translator.ops.logs import configure_logging
    from translator.serve import run

    settings = settings_or_say_why(args)
    if settings is None:
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

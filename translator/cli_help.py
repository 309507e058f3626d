"""How the command line's help reads: each subcommand lists only its own flags, each flag with its default
(a settings flag's default is the setting's, from the model), and a few examples after them."""

from __future__ import annotations

import argparse
from typing import Any, TypeAlias

from translator.settings import Settings, fields_of

# What add_subparsers returns: each cli_<group> module adds its subcommand to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; a flag's default appended when it has one worth saying (an
    absent flag that leaves the setting alone has None, and a switch False: neither is said)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or not action.option_strings or default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def setting_default(dotted: str) -> Any:
    """The default of a setting, by its dotted name ("coap.port")."""
    section, _, name = dotted.rpartition(".")
    fields = fields_of(Settings)
    if section:
        fields = fields_of(fields[section].annotation)
    return fields[name].get_default(call_default_factory=True)


def from_settings(dotted: str) -> str:
    """What a settings flag's help says about where else the value comes from, and its default."""
    variable = "IOTC_TRANSLATOR_" + dotted.replace(".", "_").upper()
    default = setting_default(dotted)
    return f"(setting {dotted}, {variable}; default: {'none' if default in ('', None) else default})"


def examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)

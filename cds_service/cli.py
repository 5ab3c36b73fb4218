"""The ``trialcds`` console script: each sub-command lives in its own module under ``commands/``.

Start-up time matters (``trialcds evaluate`` is run by hand and from scripts): only the module of the
sub-command being run is imported. ``trialcds --help`` imports none of them — the one-line help of
each sub-command is kept here — and ``trialcds evaluate`` never loads the web server, the database
or the FHIR client libraries that ``serve`` and ``seed`` need.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Sub-command → (module with ``register(subparsers)`` setting ``func`` on its parser, one-line help).
# A new sub-command is one line here; its module is imported only when that sub-command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("cds_service.commands.evaluate", "evaluate one patient held in a FHIR Bundle"),
    "serve": ("cds_service.commands.serve", "run the CDS Hooks service (gunicorn)"),
    "seed": ("cds_service.commands.seed", "load the bundled synthetic patients into a FHIR server"),
    "screen": ("cds_service.commands.screen", "screen a whole population (Bulk Data, NDJSON or Bundles)"),
    "db": ("cds_service.commands.db", "create or upgrade the service's database (schema migrations)"),
}
# Kept for callers that list the modules (each is imported only when its command is chosen).
COMMAND_MODULES = tuple(module for module, _ in COMMANDS.values())


class UsageError(Exception):
    """A one-line error for the user; the command exits with code 2."""


def chosen_command(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (the first word that is one), else None."""
    for word in argv:
        if word in COMMANDS:
            return word
        if not word.startswith("-"):
            return None  # an unknown word: argparse reports it
    return None


class _Placeholder:
    """Stands for a sub-command that is not being run: listed in ``--help``, its module not imported."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help_text = name, help_text

    def register(self, subparsers: argparse._SubParsersAction) -> None:
        subparsers.add_parser(self.name, help=self.help_text, add_help=False)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The full parser. With ``argv``, only the sub-command it names is loaded (the others are placeholders);
    without, every sub-command module is imported (for callers that parse several command lines)."""
    parser = argparse.ArgumentParser(prog="trialcds", description="FHIR-native clinical trial screening (CDS Hooks)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    chosen = chosen_command(argv) if argv is not None else None
    for name, (module, help_text) in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(module).register(subparsers)
        else:
            _Placeholder(name, help_text).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    if not hasattr(args, "func"):  # a command line chosen_command misread: load every sub-command
        args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"trialcds {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run as a module, this file is loaded twice (as __main__ and as cds_service.cli); the commands
    # raise the second copy's UsageError, so main must come from that copy too.
    from cds_service.cli import main as package_main

    sys.exit(package_main())

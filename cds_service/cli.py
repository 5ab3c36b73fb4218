"""The ``trialcds`` console script: each sub-command lives in its own module under ``commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, each with ``register(subparsers)`` setting ``func`` on its parser.
COMMAND_MODULES = (
    "cds_service.commands.evaluate",
    "cds_service.commands.serve",
    "cds_service.commands.seed",
)


class UsageError(Exception):
    """A one-line error for the user; the command exits with code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trialcds", description="FHIR-native clinical trial screening (CDS Hooks)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
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

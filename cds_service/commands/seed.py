"""``trialcds seed --fhir-server URL``: load the synthetic patients into a FHIR server.

Each patient goes in as one transaction of PUTs with its own ids, so loading twice changes
nothing: the same command works against the local HAPI harness and a public sandbox.
"""

from __future__ import annotations

import argparse
import os
import sys

import requests

from cds_service.asof import TIMEZONE_SETTING, site_today
from cds_service.cli import UsageError
from cds_service.commands.evaluate import parse_as_of
from cds_service.seeding import anchor_date, rebase_bundle, seed_bundles, transaction_from_bundle


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("seed", help="load the bundled synthetic patients into a FHIR server")
    p.add_argument("--fhir-server", required=True, help="FHIR R4 base URL, e.g. http://127.0.0.1:8090/fhir")
    p.add_argument("--as-of", type=parse_as_of, default=None,
                   help="shift the seeds' dates so they are current on this date (default: today in TRIALCDS_TIMEZONE, UTC when unset)")
    p.add_argument("--token", default=None, help="a bearer token for the server, if it needs one")
    p.add_argument("--only", nargs="*", default=None, help="load only these seed slugs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        # Today where the site is: the as-of date of the service's hook calls, so window-edge seeds
        # (p42, p53–p55) sit on their edges for the card too.
        target = args.as_of or site_today(os.environ.get(TIMEZONE_SETTING))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    base = args.fhir_server.rstrip("/")
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    bundles = seed_bundles()
    chosen = args.only if args.only else list(bundles)
    unknown = [s for s in chosen if s not in bundles]
    if unknown:
        raise UsageError(f"no such seed patient: {', '.join(unknown)}")
    with requests.Session() as session:
        for slug in chosen:
            transaction, invalid = transaction_from_bundle(rebase_bundle(bundles[slug], anchor_date(), target))
            for ref in invalid:
                print(f"{slug}: left out {ref}: not valid FHIR R4", file=sys.stderr)
            try:
                response = session.post(base, json=transaction, headers=headers, timeout=60)
            except requests.RequestException as exc:
                raise UsageError(f"{base} unreachable ({exc.__class__.__name__})") from None
            if response.status_code >= 300:
                print(f"{slug}: HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
                return 1
            print(f"{slug}: {len(transaction['entry'])} resources")
    print(f"loaded {len(chosen)} patients into {base} (dates as of {target.isoformat()})")
    return 0

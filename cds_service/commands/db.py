"""``trialcds db upgrade`` / ``trialcds db current``: the service's database schema.

``upgrade`` creates the database (a new one gets a new patient-hash salt) or migrates it to the
schema this trialcds needs; run it once per deployment, before ``serve``, which in production
refuses a database that is missing or not current. ``current`` prints the revision the database
is at and exits 1 when it is not the newest (for deployment scripts).
"""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("db", help="create or upgrade the service's database (schema migrations)")
    p.add_argument("--database-url", default=None,
                   help="SQLAlchemy URL (default: TRIALCDS_DATABASE_URL, else the local SQLite file)")
    actions = p.add_subparsers(dest="db_command", required=True)
    actions.add_parser("upgrade", help="create the database or migrate it to the newest schema")
    actions.add_parser("current", help="print the database's schema revision (exit 1 if not the newest)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `trialcds --help` and the other sub-commands never load the database stack.
    from cds_service.app import DEFAULT_DATABASE_URL
    from cds_service.cli import UsageError
    from cds_service.store import StoreConfigError, make_engine, migrate
    from cds_service.store.engine import display_url, normalise_url, sqlite_path
    from sqlalchemy.exc import SQLAlchemyError

    url = args.database_url or os.environ.get("TRIALCDS_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        if args.db_command == "upgrade":
            before, after = migrate.upgrade_database(url)
            print(f"database at schema {after}" + (f" (was {before})" if before != after else " (already current)"))
            return 0
        path = sqlite_path(normalise_url(url))
        if path is not None and not path.exists():
            print(f"{path}: no database (run `trialcds db upgrade` to create it)")
            return 1
        engine = make_engine(url)
        try:
            state = migrate.schema_state(engine)
        finally:
            engine.dispose()
        print(f"{display_url(engine)}: schema {state.current or 'none'}, newest {state.head}")
        return 0 if state.is_current else 1
    except StoreConfigError as exc:
        raise UsageError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise UsageError(f"database: {type(exc.orig or exc).__name__}: "
                         f"{(str(exc.orig or exc).strip().splitlines() or [''])[0][:200]}") from None

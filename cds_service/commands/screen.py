"""``trialcds screen``: every patient of an export (or of a FHIR server, through Bulk Data) screened
for a trial; a worklist, a screening log and a report in ``--out``. See docs/screening.md.

Exit codes: 0 the input was read whole; 1 the outputs are written but some of the input was skipped
(summary.json says what: malformed lines, resources of no patient, patients without a Patient
resource…); 2 usage error (bad arguments, no such folder, no input files, unknown trial);
3 the FHIR server failed (Bulk export, or the Group of ``--write-group``).

The Bulk Data client (``cds_service.screening.bulk``) is called as::

    bulk.download_export(base_url, group_id, resource_types, folder, token, progress) -> Path
    # the folder of downloaded NDJSON files; raises bulk.BulkExportError (→ exit 3)

``folder`` is ``--out/export`` (it also keeps the status URL, so an interrupted run resumes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from cds_service.asof import TIMEZONE_SETTING, site_today
from cds_service.cli import UsageError

EXIT_OK, EXIT_INCOMPLETE_INPUT, EXIT_USAGE, EXIT_SERVER = 0, 1, 2, 3


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("screen", help="screen a whole population (Bulk Data, NDJSON or Bundles)",
                              description="Screen every patient of an export for a trial. Exit codes: 0 input read "
                                          "whole, 1 some input skipped (see summary.json), 2 usage, 3 FHIR server error.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--fhir-server", metavar="URL", help="FHIR base URL: Bulk Data $export of its patients")
    source.add_argument("--ndjson", type=Path, metavar="DIR", help="a folder of Bulk Data NDJSON (.ndjson, .ndjson.gz)")
    source.add_argument("--bundles", type=Path, metavar="DIR", help="a folder of one-patient Bundles (Synthea output)")
    p.add_argument("--group", metavar="ID", help="with --fhir-server: export this Group's patients only")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created owner-only)")
    p.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in TRIALCDS_TIMEZONE, UTC when unset)")
    p.add_argument("--trial", default="NCT05271110", help="trial id or service id (default: NCT05271110)")
    p.add_argument("--previous", type=Path, metavar="DIR", help="a previous run's --out: mark candidates not listed there as new")
    p.add_argument("--engine", choices=("local", "spark"), default="local")
    p.add_argument("--workers", type=_positive, default=None, help="local engine: worker processes (default: the cores)")
    p.add_argument("--spark-master", default="local[*]", help="spark engine: master URL (default: local[*])")
    p.add_argument("--token", default=None, help="bearer token for the FHIR server (never logged)")
    p.add_argument("--write-group", action="store_true", help="PUT the candidates as a FHIR Group to --fhir-server")
    p.add_argument("--quiet", action="store_true", help="plain log lines only at the end of each phase")
    p.set_defaults(func=run)


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {value!r}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    from cds_service.screening.engines import ScreeningPlan, get_engine
    from cds_service.screening.engines.local import default_workers
    from cds_service.screening.inputs import BundleSource, InputError, NdjsonSource
    from cds_service.screening.outputs import make_private_dir, read_previous
    from cds_service.screening.progress import Progress
    from cds_service.screening.reads import TrialReads
    from cds_service.trials import get_trial

    if args.group and not args.fhir_server:
        raise UsageError("--group needs --fhir-server")
    if args.write_group and not args.fhir_server:
        raise UsageError("--write-group needs --fhir-server (the server to write the Group to)")
    try:
        trial = get_trial(args.trial)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None
    previous = None
    if args.previous is not None:
        try:
            previous = read_previous(args.previous)
        except (OSError, KeyError, UnicodeDecodeError) as exc:
            raise UsageError(f"--previous {args.previous}: no readable candidates.csv ({exc.__class__.__name__})") from None
    try:
        # Today where the site is, as for the card and `trialcds evaluate`: the same patient on the
        # same day must get the same evaluation from all three.
        as_of = args.as_of or site_today(os.environ.get(TIMEZONE_SETTING))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    progress = Progress(quiet=args.quiet)
    timings: dict[str, float] = {}
    started = time.monotonic()

    if args.fhir_server:
        _make_out(args.out, make_private_dir)
        from cds_service.screening import bulk  # H8's Bulk Data client

        try:
            folder = bulk.download_export(args.fhir_server, args.group, TrialReads.from_trial(trial).resource_types,
                                          args.out / "export", args.token, progress)
        except bulk.BulkExportError as exc:
            print(f"trialcds screen: error: {exc}", file=sys.stderr)
            return EXIT_SERVER
        timings["export"] = time.monotonic() - started
        source_info = {"kind": "fhir-server", "url": args.fhir_server, "group": args.group}
        ndjson_folder: Path | None = folder
    else:
        ndjson_folder = args.ndjson
        source_info = ({"kind": "ndjson", "folder": str(args.ndjson)} if args.ndjson
                       else {"kind": "bundles", "folder": str(args.bundles)})
    try:
        source = (NdjsonSource(ndjson_folder) if args.fhir_server
                  else NdjsonSource(ndjson_folder, exclude=args.out) if ndjson_folder is not None
                  else BundleSource(args.bundles, exclude=args.out))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    source_info.update(files=len(source.files), bytes=source.size)
    _make_out(args.out, make_private_dir)

    try:
        engine = get_engine(args.engine)
    except ImportError as exc:
        raise UsageError(f"--engine {args.engine} is not installed ({exc}); pip install 'trialcds[{args.engine}]'") from None
    workdir = args.out / ".work"
    shutil.rmtree(workdir, ignore_errors=True)
    make_private_dir(workdir)
    workers = args.workers or default_workers()
    plan = ScreeningPlan(source, trial.id, as_of, workdir, workers,
                         args.spark_master if args.engine == "spark" else None)
    try:  # the scratch partitions hold patient data: removed however the run ends (Ctrl-C too)
        phase_start = time.monotonic()
        engine_run = engine.run(plan, progress)
        timings["engine"] = time.monotonic() - phase_start

        from cds_service.screening.outputs import write_run_outputs

        tally = write_run_outputs(args.out, trial, as_of, engine_run, previous, source_info,
                                  {"name": engine.name, **engine_run.details}, timings, started, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    code = EXIT_OK if engine_run.issues.read_whole else EXIT_INCOMPLETE_INPUT
    print(funnel_text(tally, args.out))
    if not engine_run.issues.read_whole:
        print(f"warning: some of the input was skipped; see {args.out / 'summary.json'} (input.skipped)", file=sys.stderr)
    if args.write_group:
        from cds_service.screening.group import GroupWriteError, build_group, put_group

        refs = [c["patient"] for c in tally.worklist()]
        try:
            url = put_group(args.fhir_server, build_group(trial, as_of.isoformat(), refs), args.token)
        except GroupWriteError as exc:
            print(f"trialcds screen: error: --write-group: {exc}", file=sys.stderr)
            return EXIT_SERVER
        print(f"Group of {len(refs)} candidates written: {url}")
    return code


def _make_out(out: Path, make_private_dir) -> None:
    try:
        make_private_dir(out)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the folder ({exc.strerror or exc.__class__.__name__})") from None


def funnel_text(tally, out: Path) -> str:
    width = max(len(step["label"]) for step in tally.funnel())
    lines = [f"{tally.trial.id} — screening funnel"]
    lines += [f"  {step['label']:<{width}}  {step['patients']:>9,}" for step in tally.funnel()]
    lines.append(f"Report: {out / 'report.html'}")
    return "\n".join(lines)

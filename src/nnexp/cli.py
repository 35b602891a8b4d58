"""`nnexp`: everything besides training (`nnexp-train`): reports, listing and diffing runs,
reproduction, run repair and a tracking server. An error ends it with one line on stderr and the
exit status of ``errors.exit_code``: 2 bad input, 1 a run that failed, 130/143 Ctrl-C/SIGTERM;
`nnexp reproduce` exits 0 identical, 3 equivalent, 1 different (``nnexp.reproduce.verdict``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnexp import console
from nnexp.config.hydra_errors import HYDRA_ERRORS, hydra_error_line
from nnexp.errors import UserError, exit_code
from nnexp.reproduce.verdict import DEFAULT_TOLERANCES, DIFFERENT, default_tolerance, verdict
from nnexp.safety import privacy
from nnexp.signals import Terminated, signals_raise

DESCRIPTION = (
    "Everything besides training (nnexp-train): reports, reproduction, run repair and a "
    "tracking server."
)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the subcommand; an error a user can act on (or a signal)
    ends it with one line and ``exit_code``, never a traceback; a password in a URI argument gets
    one warning, and is redacted from everything printed."""
    privacy.telemetry_off_by_default()
    given = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(given)
    if any(privacy.redact(arg) != arg for arg in given):
        console.warning(privacy.ENVIRONMENT_ADVICE)
    try:
        with signals_raise():
            code = args.handler(args)
    except (UserError, *HYDRA_ERRORS) as err:
        console.error(hydra_error_line(err) if isinstance(err, HYDRA_ERRORS) else str(err))
        code = exit_code(err)
    except (KeyboardInterrupt, Terminated) as err:
        code = exit_code(err)
    sys.exit(code)


def parser() -> argparse.ArgumentParser:
    """The command line of `nnexp`."""
    top = argparse.ArgumentParser(prog="nnexp", description=DESCRIPTION)
    commands = top.add_subparsers(required=True, metavar="COMMAND")

    runs = commands.add_parser("runs", help="look after runs in the store")
    runs_commands = runs.add_subparsers(required=True, metavar="ACTION")
    repair = runs_commands.add_parser(
        "repair", help="end runs left RUNNING by a process that died as KILLED"
    )
    _store_option(repair)
    repair.add_argument("--experiment", help="only this MLflow experiment (default: all)")
    repair.add_argument(
        "--stale-after",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help="a run from another host is presumed lost after this long without a logged "
        "metric (default 60)",
    )
    repair.add_argument(
        "--dry-run", action="store_true", help="say what would change, change nothing"
    )
    repair.set_defaults(handler=_repair)

    listing = runs_commands.add_parser(
        "list", help="an experiment's runs: params and final metrics, filtered, sorted, grouped"
    )
    listing.add_argument("experiment", metavar="EXPERIMENT", help="an MLflow experiment's name")
    _store_option(listing)
    listing.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep runs where a param, metric or status matches (=, !=, <, >, <=, >=); repeatable",
    )
    listing.add_argument(
        "--sort", metavar="KEY", help="order by a param or metric; --sort=-KEY for descending"
    )
    listing.add_argument(
        "--group-by",
        action="append",
        default=[],
        metavar="KEY",
        help="one row per value of KEY: mean and 95 %% t-interval of each final metric over the "
        "runs' seeds; repeatable",
    )
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    listing.set_defaults(handler=_list)

    compare = commands.add_parser(
        "diff", help="two runs (or two sweeps by their parent runs): what differs, metric deltas"
    )
    compare.add_argument("first", metavar="A", help="a run id, or a sweep's parent run id")
    compare.add_argument("second", metavar="B", help="a run id, or a sweep's parent run id")
    _store_option(compare)
    compare.add_argument("--format", choices=("text", "json"), default="text")
    compare.add_argument(
        "--out", type=Path, metavar="FILE.png", help="also draw A's and B's curves into this PNG"
    )
    compare.set_defaults(handler=_diff)

    report = commands.add_parser(
        "report", help="write a report (markdown, HTML, figures) of an experiment's runs"
    )
    report.add_argument(
        "target",
        metavar="TARGET",
        help="an experiments/ name, a sweep's parent run id, or an MLflow experiment name",
    )
    _store_option(report)
    report.add_argument(
        "--out", type=Path, metavar="FOLDER", help="the report's folder (default reports/TARGET/)"
    )
    report.set_defaults(handler=_report)

    reproduce = commands.add_parser(
        "reproduce",
        help="retrain a logged run from its config and check weights and curves are identical",
    )
    reproduce.add_argument("run_id", metavar="RUN_ID", help="the run to reproduce")
    _store_option(reproduce)
    reproduce.add_argument(
        "--tolerance",
        type=float,
        help="largest deviation, relative to an array's largest magnitude (at least 1), called "
        "equivalent when the bits differ (default by the run's model.dtype: "
        + ", ".join(f"{value:g} for {dtype}" for dtype, value in DEFAULT_TOLERANCES.items())
        + "); exit 0 identical, 3 equivalent, 1 different",
    )
    reproduce.add_argument(
        "--no-pin",
        action="store_true",
        help="retrain with this machine's OpenBLAS kernel, numpy loops and BLAS thread count "
        "instead of the recorded ones (a deterministic run stays on its baseline)",
    )
    reproduce.set_defaults(handler=_reproduce)

    server = commands.add_parser("server", help="start an MLflow tracking server (mlflow server)")
    server.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument(
        "--backend-store-uri", help="default sqlite:///<this folder>/mlflow.db; or postgresql://..."
    )
    server.add_argument("--artifacts-destination", help="default ./mlartifacts")
    server.add_argument("--workers", type=int, default=2)
    server.add_argument(
        "--auth",
        action="store_true",
        help="MLflow basic-auth; admin password from $NNEXP_ADMIN_PASSWORD",
    )
    server.set_defaults(handler=_server)
    return top


def _store_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--tracking-uri",
        help="the MLflow store (default $MLFLOW_TRACKING_URI, else ./mlflow.db)",
    )


def _client(args: argparse.Namespace):
    """A client for the store of --tracking-uri, checked first (before MLflow is imported, so a
    store that cannot work is one line within seconds)."""
    from nnexp.tracking.uri import check_store, resolve_uri, sqlite_file

    uri = resolve_uri(args.tracking_uri, Path.cwd())
    database = sqlite_file(uri)
    if database is not None and not database.is_file():
        raise UserError(f"no MLflow store at {uri}; pass --tracking-uri or run from its folder")
    check_store(uri)
    from nnexp.tracking.store import open_store

    return open_store(uri).client


def _experiment_ids(client, name: str | None) -> list[str]:
    if name is None:
        return [e.experiment_id for e in client.search_experiments()]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = ", ".join(e.name for e in client.search_experiments())
        raise UserError(f"no MLflow experiment named {name!r} (there are: {known})")
    return [experiment.experiment_id]


def _repair(args: argparse.Namespace) -> int:
    if not 0 <= args.stale_after < float("inf"):
        raise UserError(
            f"--stale-after {args.stale_after} must be a number of minutes ≥ 0, e.g. 60"
        )
    client = _client(args)
    from nnexp.tracking.repair import find_dead, mark_killed

    dead = find_dead(client, _experiment_ids(client, args.experiment), args.stale_after * 60)
    for found in dead:
        if not args.dry_run:
            mark_killed(client, found)
        verb = "would mark" if args.dry_run else "marked"
        console.info(
            f"{verb} {found.run.info.run_id} ({found.run.info.run_name}) KILLED: {found.reason}"
        )
    console.info(f"{len(dead)} run(s) {'to repair' if args.dry_run else 'repaired'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    client = _client(args)
    from nnexp.config.schema import CONF_DIR
    from nnexp.report.make import make_report

    written = make_report(client, args.target, CONF_DIR / "experiment", args.out)
    logged = f"; logged to run {written.logged_to}" if written.logged_to else ""
    console.info(
        f"report of {args.target} ({written.runs} runs): {written.folder / 'report.md'}, "
        f"{written.folder / 'report.html'}{logged}"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    client = _client(args)
    from nnexp.report import listing

    records = listing.read_experiment(client, args.experiment)
    keys = listing.swept(records)  # the experiment's, so a filter keeps the columns
    for expression in args.filter:
        records = listing.apply_filter(records, expression)
    if args.sort:
        records = listing.sort_records(records, args.sort)
    found = (
        listing.grouped(records, args.group_by) if args.group_by else listing.rows_of(records, keys)
    )
    sys.stdout.write(privacy.redact(listing.render(found, args.format)))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from nnexp.report.diff import check_figure_path

    if args.out is not None:
        check_figure_path(args.out)
    client = _client(args)
    from nnexp.report.diff import diff, figure

    found = diff(client, args.first, args.second)
    if args.out is not None:
        figure(client, found, args.out)
    if args.format == "json":
        import json

        drawn = {"figure": str(args.out)} if args.out is not None else {}
        sys.stdout.write(json.dumps(found.as_json() | drawn, indent=1) + "\n")
    else:
        drawn = f"figure: {args.out}\n" if args.out is not None else ""
        sys.stdout.write(privacy.redact(found.as_text() + drawn))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    client = _client(args)
    from nnexp.reproduce.rerun import reproduce

    done = reproduce(client, args.run_id, console.warning, pin=not args.no_pin)
    for found in done.differences:
        console.info(f"{found.name}: {found.difference or 'identical'}")
    deviations = [found.deviation for found in done.differences]
    tolerance = default_tolerance(done.dtype) if args.tolerance is None else args.tolerance
    judged = verdict(args.run_id, done.run_id, deviations, done.reasons, tolerance)
    if judged.code == DIFFERENT:
        console.info(f"largest deviation {max(deviations):.3g} exceeds the tolerance {tolerance:g}")
    console.info(judged.line)
    return judged.code


def _server(args: argparse.Namespace) -> int:
    from nnexp.tracking.server import serve

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port; pass one from 1 to 65535")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers} must be 1 or more")
    serve(
        args.host,
        args.port,
        args.backend_store_uri,
        args.artifacts_destination,
        args.workers,
        args.auth,
    )
    return 0

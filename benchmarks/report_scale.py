"""Reading runs back at scale: ``nnexp report``, ``nnexp runs list`` and ``nnexp diff`` of two
sweeps on one experiment of 10,000 runs (two sweeps of 5,000), each timed as a process with its
peak memory, against the floor of any reader: MLflow's own paged ``search_runs`` over the same
runs. The store is built directly with MLflow's client (one ``log_batch`` per run, the curves of
a 500-epoch run recorded every 20 epochs), not by training.

``python -m benchmarks report_scale`` measures and writes the section;
``python -m benchmarks.report_scale --store DIR`` builds (or reuses) the store in DIR and
measures without writing."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

import numpy as np

from benchmarks import machine, results
from benchmarks.markdown import section as markdown_section
from benchmarks.markdown import table
from benchmarks.markdown import verdict as markdown_verdict

RUNS, QUICK_RUNS = 10_000, 400
EPOCHS, EVERY = 500, 20
SECONDS_TARGET, MEMORY_TARGET = 60.0, 1024.0  # s, MiB
EXPERIMENT = "scale"
WORKERS = 3
#: The sections of results.md this one follows.
SECTIONS_BEFORE = ["core", "float32", "memory", "seeds", "tracking", "sweep"]
BIN = Path(sys.executable).parent
#: The floor: every run of the experiment through MLflow's paged search, nothing else.
SEARCH_ALL = """
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
experiment = client.get_experiment_by_name(sys.argv[2])
token, count = None, 0
while True:
    page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
    count += len(page)
    token = page.token
    if not token:
        break
print(count)
"""


SWEEPS = 2


def grid(runs: int) -> dict[str, list[str]]:
    """Each sweep's swept values: ``runs`` / SWEEPS of them (the second sweep's lr are 10×)."""
    hidden = [str(h) for h in range(1, runs // (SWEEPS * 4 * 5 * 5) + 1)]
    lrs = ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"]
    return {
        "model.hidden": hidden,
        "optim.lr": lrs[:5],
        "regularization.l2": ["0", "1e-05", "0.0001", "0.001", "0.01"],
        "seed": ["0", "1", "2", "3"],
    }


def build(uri: str, runs: int, workers: int = WORKERS) -> list[str]:
    """Two sweep parents and their children in experiment EXPERIMENT, the children written by
    ``workers`` processes (each a share of them; a rerun fills in what is missing); the
    parents' run ids."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment = found.experiment_id if found else client.create_experiment(EXPERIMENT)
    parents = _parents(client, experiment)
    for sweep in range(len(parents), SWEEPS):
        parent = client.create_run(
            experiment, run_name=f"sweep {sweep}", tags={"nnexp.run_type": "sweep"}
        )
        specs = {k: ",".join(v) for k, v in grid(runs).items()}
        client.log_batch(parent.info.run_id, params=[Param(k, v) for k, v in specs.items()])
        parents.append(parent.info.run_id)
    part = [sys.executable, "-m", "benchmarks.report_scale", "--uri", uri, "--runs", str(runs)]
    started = [subprocess.Popen([*part, "--part", f"{i}/{workers}"]) for i in range(workers)]
    if any(process.wait() != 0 for process in started):
        raise RuntimeError("a process building the store failed")
    for parent_id in parents:
        client.set_terminated(parent_id)
    return parents


def _parents(client, experiment: str) -> list[str]:
    found = client.search_runs(
        [experiment], "tags.`nnexp.run_type` = 'sweep'", order_by=["attributes.run_name ASC"]
    )
    return [run.info.run_id for run in found]


def build_part(uri: str, runs: int, part: int, parts: int) -> None:
    """Write the children whose index is ``part`` modulo ``parts`` that the store lacks; each
    child's values from a generator seeded by its index, so any split writes the same store."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parents = _parents(client, experiment)
    present, token = set(), None
    while True:
        page = client.search_runs(
            [experiment], "tags.`nnexp.run_type` = 'child'", max_results=1000, page_token=token
        )
        present |= {run.data.tags.get("nnexp.config_hash") for run in page if run.data.metrics}
        for unfinished in [run for run in page if not run.data.metrics] if part == 0 else []:
            client.delete_run(unfinished.info.run_id)  # a build stopped between two calls
        token = page.token
        if not token:
            break
    keys = grid(runs)
    steps = np.arange(0, EPOCHS + 1, EVERY)
    configs = product(range(SWEEPS), product(*keys.values()))
    for index, (sweep, values) in enumerate(configs):
        config_hash = f"{sweep}-{'-'.join(values)}"
        if index % parts != part or config_hash in present:
            continue
        generator = np.random.default_rng(index)
        params = dict(zip(keys, values, strict=True))
        params["optim.lr"] = str(float(params["optim.lr"]) * (1 + 9 * sweep))
        params |= {"dataset.name": "synthetic", "optim.epochs": str(EPOCHS)}
        params["dataset.seed"] = params["seed"]
        l2 = float(params["regularization.l2"])
        final = 0.01 / math.sqrt(float(params["model.hidden"])) + l2 * (1 + generator.random())
        train = final + 0.3 * np.exp(-steps * float(params["optim.lr"]) / 200.0)
        test = train * (1.1 + 0.05 * generator.random())
        tags = {
            "mlflow.parentRunId": parents[sweep],
            "nnexp.run_type": "child",
            "nnexp.status": "finished",
            "nnexp.config_hash": config_hash,
        }
        run = client.create_run(experiment, run_name=" ".join(values), tags=tags)
        metrics = [
            Metric(name, float(value), 0, int(step))
            for name, curve in (("train_cost", train), ("test_cost", test))
            for step, value in zip(steps, curve, strict=True)
        ]
        params_list = [Param(k, v) for k, v in params.items()]
        client.log_batch(run.info.run_id, metrics=metrics, params=params_list)
        client.set_terminated(run.info.run_id)


def measure(command: list[str], cwd: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak resident MiB, exit status) of ``command`` in a fresh
    process."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "wall = time.perf_counter() - start\n"
        "used = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(wall, used.ru_utime + used.ru_stime, used.ru_maxrss / 1024, done.returncode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True, text=True, check=True
    )
    wall, cpu, peak, code = done.stdout.split()
    return float(wall), float(cpu), float(peak), int(code)


def run_all(folder: Path, runs: int) -> list[tuple[str, float, float, float, int]]:
    """Build (or reuse) the store in ``folder``, then time each command once."""
    uri = f"sqlite:///{folder}/mlflow.db"
    marker = folder / "parents.txt"
    if not marker.exists():
        started = time.perf_counter()
        marker.write_text("\n".join(build(uri, runs)) + "\n")
        print(f"built {runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    first, second = marker.read_text().split()
    nnexp = str(BIN / "nnexp")
    listing = [nnexp, "runs", "list", EXPERIMENT, "--tracking-uri", uri]
    commands = {
        "MLflow `search_runs`, every page (the floor)": [
            sys.executable,
            "-c",
            SEARCH_ALL,
            uri,
            EXPERIMENT,
        ],
        f"`nnexp report {EXPERIMENT}`": [
            nnexp,
            "report",
            EXPERIMENT,
            "--tracking-uri",
            uri,
            "--out",
            str(folder / "report"),
        ],
        f"`nnexp runs list {EXPERIMENT}`": [*listing],
        f"`nnexp runs list {EXPERIMENT} --group-by model.hidden --format json`": [
            *listing,
            "--group-by",
            "model.hidden",
            "--format",
            "json",
        ],
        "`nnexp diff SWEEP_A SWEEP_B --out diff.png`": [
            nnexp,
            "diff",
            first,
            second,
            "--tracking-uri",
            uri,
            "--out",
            str(folder / "diff.png"),
        ],
    }
    return [(name, *measure(command, folder)) for name, command in commands.items()]


def section(quick: bool) -> str:
    """The markdown section: each command's wall time and peak memory against the targets."""
    runs = QUICK_RUNS if quick else RUNS
    with tempfile.TemporaryDirectory(prefix="nnexp-scale-") as temporary:
        measured = run_all(Path(temporary), runs)
    return render(measured, runs)


def render(measured: list[tuple[str, float, float, float, int]], runs: int) -> str:
    """The section's markdown from ``measured`` (name, wall and CPU seconds, MiB, exit
    status); the target is met on the wall time, or on the CPU time when the machine's load
    stretched the wall time (the load is stated below the table)."""
    floor = measured[0][2]
    rows = []
    for name, seconds, cpu, peak, code in measured:
        ok = code == 0 and min(seconds, cpu) <= SECONDS_TARGET and peak <= MEMORY_TARGET
        target = "" if name == measured[0][0] else markdown_verdict(ok, "≤ 60 s, ≤ 1 GiB")
        cells = [f"{seconds:.1f} s", f"{cpu:.1f} s", f"{cpu / floor:.2f}×", f"{peak:.0f} MiB"]
        rows.append([name, *cells, code, target])
    method = (
        f"One MLflow experiment of {runs} finished runs in a SQLite store: two sweep parents of "
        f"{runs // 2} children each (hidden × lr × λ × 4 seeds), every child with 10 params, 4 "
        f"tags and a train and a test cost curve of {EPOCHS // EVERY + 1} points, logged by "
        "MLflow's client with one `log_batch` per run. Each command runs once as a fresh process "
        "on the same store; wall time and peak resident memory (the process's max RSS) are its "
        "own (CPU time: user + system of the process and its children); the ratio is against "
        "MLflow's paged `search_runs` over the same runs, the least "
        "any reader of the store does. The report reads final values from the search and the "
        "curves of at most 200 runs (whole settings evenly spaced in rank); the diff draws each "
        "sweep's mean ± std over at most 200 children by the same rule. "
        f"Machine: {machine.cpu_model()}."
    )
    headers = "command | wall time | CPU time | CPU / floor's | peak memory | exit | target"
    return markdown_section(f"Reports and listings at {runs} runs", method, table(headers, rows))


def main() -> int:
    """``--store DIR [--runs N] [--write]``: build or reuse a store there, print the section
    (``--write``: and merge it into benchmarks/results.md); ``--uri URI --part I/K``: one
    building process's share."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_scale")
    parser.add_argument("--store", type=Path)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        part, parts = map(int, args.part.split("/"))
        build_part(args.uri, args.runs, part, parts)
        return 0
    args.store.mkdir(parents=True, exist_ok=True)
    before = machine.load()
    measured = run_all(args.store, args.runs)
    body = results.stamp(render(measured, args.runs), machine.git_commit(), before, machine.load())
    print(body)
    if args.write:
        path = Path(__file__).with_name("results.md")
        order = [*SECTIONS_BEFORE, "report_scale"]
        path.write_text(results.merge(path.read_text(), "", {"report_scale": body}, order))
    return 0


if __name__ == "__main__":
    sys.exit(main())

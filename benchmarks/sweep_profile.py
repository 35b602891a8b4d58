"""Where a sweep job's time goes: ``python -m benchmarks.sweep_profile JOBS BEFORE AFTER`` reads
two cProfile files of ``python -m cProfile -o FILE -m nnexp -m "model.hidden=range(1,JOBS+1)"
optim.epochs=100`` (e.g. of two checkouts, run at the same time) and prints the per-job seconds
and shares of each part as a markdown table."""

from __future__ import annotations

import pstats
import sys

#: Each part: functions ("file-suffix:name") whose cumulative times add up, or (a, b): a less b.
PARTS: dict[str, list] = {
    "Hydra composition (load_sweep_config)": ["config_loader_impl.py:load_sweep_config"],
    "Hydra per-job files and logging (run_job less the task)": [
        ("hydra/core/utils.py:run_job", "train.py:hydra_task")
    ],
    "provenance (git, versions, BLAS threads)": [
        "provenance.py:code_version",
        "provenance.py:package_versions",
        "provenance.py:blas_threads",
    ],
    "MLflow: open, params, dataset input, close": [
        "fluent.py:start_run",
        "run.py:_close",
        "run.py:params",
        "job.py:log_dataset",
        "tracking/job.py:__init__",
    ],
    "MLflow: artifacts": ["run.py:artifact"],
    "cost-curve figure": ["plots.py:cost_curve"],
    "pyfunc model": ["model.py:log_model"],
    "training (core.train)": ["core/training.py:train"],
    "other job files (weights, config, costs.csv, model inputs)": [
        ("outputs.py:write_outputs", "plots.py:cost_curve")
    ],
}
#: The whole of the jobs: the sweeper's check, the launcher, and a parent's model at the end.
WHOLE = [
    "basic_launcher.py:launch",
    "sweeper.py:validate_batch_is_legal",
    "compose_once.py:validate_batch_is_legal",
    "sweep.py:_log_best_model",
]


def cumulative(stats: dict, function: str) -> float:
    """Summed cumulative seconds of the functions named ``function`` in files ending so."""
    suffix, name = function.rsplit(":", 1)
    return sum(v[3] for (f, _, n), v in stats.items() if f.endswith(suffix) and n == name)


def per_job(path: str, jobs: int) -> tuple[dict[str, float], float]:
    """Seconds per job of each part, and of the whole job."""
    stats = pstats.Stats(path).stats
    parts = {}
    for part, functions in PARTS.items():
        total = 0.0
        for function in functions:
            if isinstance(function, tuple):
                total += cumulative(stats, function[0]) - cumulative(stats, function[1])
            else:
                total += cumulative(stats, function)
        parts[part] = total / jobs
    return parts, sum(cumulative(stats, f) for f in WHOLE) / jobs


def table(jobs: int, before: str, after: str) -> str:
    """The markdown table of both profiles side by side."""
    (b, b_job), (a, a_job) = per_job(before, jobs), per_job(after, jobs)
    lines = [
        "| part of a job | before: s/job (share) | after: s/job (share) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {part} | {b[part]:.3f} ({b[part] / b_job:.0%}) | "
        f"{a[part]:.3f} ({a[part] / a_job:.0%}) |"
        for part in PARTS
    ]
    lines.append(
        f"| whole job (check, launcher, a parent's model shared out) | {b_job:.3f} | {a_job:.3f} |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(int(sys.argv[1]), sys.argv[2], sys.argv[3]))

"""`nnexp reproduce RUN_ID` end to end: a real run retrained by the real command line into a new
run, compared bit for bit; a tampered config is reported with its differences; provenance
changes are warned about; bad input gives one line; a run from another CPU (simulated by
OpenBLAS's and numpy's environment variables) is reproduced bit for bit, or judged equivalent
with the reason; a deterministic run has the same bits everywhere."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import (
    BIN,
    all_runs,
    assert_one_line_error,
    clean_env,
    mlflow_client,
    run_app,
    run_cli,
    sweep_runs,
)
from nnexp.provenance import machine
from nnexp.reproduce.rerun import compare
from nnexp.reproduce.verdict import default_tolerance

pytestmark = pytest.mark.slow


def reproduce(tmp_path, store: str, run_id: str):
    """``nnexp reproduce RUN_ID`` in-process: the run was recorded by this process's machine, so
    nothing is pinned (the tests of pinning below run in processes)."""
    return run_app("nnexp", "reproduce", run_id, "--tracking-uri", store, cwd=tmp_path)


def reproduction_of(store: str, run_id: str, experiment: str = "nnexp"):
    (found,) = [r for r in all_runs(store, experiment) if r.data.tags.get("nnexp.reproduces")]
    assert found.data.tags["nnexp.reproduces"] == run_id
    return found


def test_a_single_run_is_reproduced_bit_for_bit(train, store, tmp_path):
    assert train("optim.epochs=50", "model.hidden=4").returncode == 0
    (original,) = all_runs(store)
    done = reproduce(tmp_path, store, original.info.run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    for name in ("W1", "W2", "train_cost", "test_cost"):
        assert f"{name}: identical" in lines
    new = reproduction_of(store, original.info.run_id)
    assert (
        lines[-1]
        == f"identical: run {new.info.run_id} reproduces {original.info.run_id} bit for bit"
    )
    assert new.data.params == original.data.params
    assert new.data.metrics == original.data.metrics
    assert (tmp_path / "outputs" / "reproduce").is_dir()


def test_a_batched_sweep_child_is_reproduced(tmp_path, store):
    done = run_app(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        "optim.epochs=30",
        "train.seeds=3",
        "model.hidden=2,3",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    _, children = sweep_runs(store)
    child = children[0]
    done = reproduce(tmp_path, store, child.info.run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seeds: identical" in done.stdout and "test_cost/seed_2: identical" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("identical: ")
    new = reproduction_of(store, child.info.run_id)
    assert "mlflow.parentRunId" not in new.data.tags  # a run of its own, not a sweep job


def test_a_changed_config_and_environment_are_reported(train, store, tmp_path):
    assert train("optim.epochs=40", "tracking.log_model=false").returncode == 0
    (original,) = all_runs(store)
    run_id = original.info.run_id
    client = mlflow_client(store)
    config_path = client.download_artifacts(run_id, "config.yaml", str(tmp_path))
    config = yaml.safe_load(Path(config_path).read_text())
    config["optim"]["lr"] = 1.5
    edited = tmp_path / "edited" / "config.yaml"
    edited.parent.mkdir()
    edited.write_text(yaml.safe_dump(config))
    client.log_artifact(run_id, str(edited))
    client.set_tag(run_id, "nnexp.version.numpy", "1.0.0")
    client.set_tag(run_id, "nnexp.code_version", "0000000")

    done = reproduce(tmp_path, store, run_id)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "warning: the run used numpy 1.0.0" in done.stderr
    assert "warning: the run was trained by code 0000000" in done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("W1: largest |Δ| = ") for line in lines), lines
    assert any(line.startswith("test_cost: largest |Δ| = ") for line in lines), lines
    new = reproduction_of(store, run_id)
    assert lines[-1] == f"different: run {new.info.run_id} does not reproduce {run_id}"
    assert new.data.params["optim.lr"] == "1.5"


def test_bad_run_ids_are_one_line(tmp_path, store):
    done = run_app(
        "nnexp-train",
        "-m",
        f"tracking.uri={store}",
        "optim.epochs=5",
        "model.hidden=0,2",
        "tracking.log_model=false",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    (parent,), children = sweep_runs(store)
    rejected = next(c for c in children if c.info.status == "FAILED")
    unknown = "0123456789abcdef0123456789abcdef"
    assert_one_line_error(reproduce(tmp_path, store, unknown), f"no run with id {unknown}")
    assert_one_line_error(reproduce(tmp_path, store, parent.info.run_id), "sweep's parent")
    assert_one_line_error(reproduce(tmp_path, store, rejected.info.run_id), "has no metrics")
    missing = f"sqlite:///{tmp_path}/elsewhere/mlflow.db"
    assert_one_line_error(reproduce(tmp_path, missing, unknown), "no MLflow store")
    assert len(all_runs(store)) == 3  # nothing was retrained


# Another machine, simulated: a run recorded under one OpenBLAS kernel, set of numpy SIMD loops and
# BLAS thread count, reproduced under another. `--no-pin` shows that the bits do differ there
# (equivalent, exit 3, naming the cause); pinned, they are identical (exit 0).

#: What decides the bits of a process, set by these tests alone.
MACHINE_VARIABLES = (
    "OPENBLAS_CORETYPE",
    "NPY_DISABLE_CPU_FEATURES",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
)
#: The smallest run whose bits differ between kernels, loops and thread counts: digits' shapes
#: (1797 rows, 64 features, 10 outputs), drawn by the synthetic teacher, which spares each of a
#: test's processes the import of scikit-learn that loading digits costs (~1 s of CPU).
SMALL_RUN = (
    "dataset=synthetic",
    "dataset.n=1797",
    "dataset.d=64",
    "dataset.k=10",
    "model.hidden=64",
    "optim.epochs=5",
    "tracking.log_model=false",
)
AVX512_TARGETS = [t for t in machine.numpy_simd() if t != "X86_V3"]


def on(**variables: str) -> dict[str, str]:
    """The environment of a machine whose OpenBLAS and numpy are set as ``variables`` say."""
    env = {k: v for k, v in clean_env().items() if k not in MACHINE_VARIABLES}
    return {**env, **variables}


def recorded_machine(store: str, run_id: str) -> machine.Machine:
    found = machine.Machine.from_tags(mlflow_client(store).get_run(run_id).data.tags)
    assert found is not None
    return found


def train_on(tmp_path, store: str, env: dict[str, str], *overrides: str) -> str:
    done = run_cli("nnexp-train", f"tracking.uri={store}", *overrides, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    return newest(store)


def reproduce_on(tmp_path, store: str, run_id: str, env: dict[str, str], *options: str):
    return run_cli(
        "nnexp", "reproduce", run_id, "--tracking-uri", store, *options, cwd=tmp_path, env=env
    )


def on_cpu_0(tmp_path, env: dict[str, str], command: str, *args: str):
    """``command args…`` held to the first CPU (taskset), as on a one-core machine."""
    return subprocess.run(
        ["taskset", "-c", "0", str(BIN / command), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def needs_avx2():
    if "avx2" not in machine.cpu_flags() or "X86_V3" not in machine.numpy_simd():
        pytest.skip("this CPU has no AVX2: it cannot run the Haswell kernel or numpy's X86_V3")


MACHINES = {
    "own kernel recorded, Prescott's here": ({}, {"OPENBLAS_CORETYPE": "Prescott"}, ()),
    "Prescott's kernel recorded, Haswell's here": (
        {"OPENBLAS_CORETYPE": "Prescott"},
        {"OPENBLAS_CORETYPE": "Haswell"},
        (),
    ),
    "Haswell's kernel recorded, Prescott's here, 3 seeds": (
        {"OPENBLAS_CORETYPE": "Haswell"},
        {"OPENBLAS_CORETYPE": "Prescott"},
        ("train.seeds=3",),
    ),
    "baseline loops recorded, AVX2 (and AVX-512) here, float32 mini-batches": (
        {"NPY_DISABLE_CPU_FEATURES": " ".join(machine.numpy_simd())},
        {},
        ("optim=sgd", "model.dtype=float32"),
    ),
    "1 BLAS thread recorded, 2 here": (
        {"OPENBLAS_NUM_THREADS": "1"},
        {"OPENBLAS_NUM_THREADS": "2"},
        (),
    ),
}


@pytest.mark.parametrize(("recorded_on", "here", "overrides"), MACHINES.values(), ids=MACHINES)
def test_a_run_from_another_cpu_is_reproduced_bit_for_bit(
    tmp_path, store, recorded_on, here, overrides
):
    needs_avx2()
    run_id = train_on(tmp_path, store, on(**recorded_on), *SMALL_RUN, *overrides)
    recorded = recorded_machine(store, run_id)
    tolerance = default_tolerance(mlflow_client(store).get_run(run_id).data.params["model.dtype"])

    unpinned = reproduce_on(tmp_path, store, run_id, on(**here), "--no-pin")
    assert unpinned.returncode == 3, unpinned.stdout + unpinned.stderr
    last = unpinned.stdout.strip().splitlines()[-1]
    assert last.startswith(f"equivalent within {tolerance:g} (largest deviation "), last
    assert "not bit for bit: " in unpinned.stderr
    if "OPENBLAS_CORETYPE" in here:
        assert f"kernel {recorded_machine(store, newest(store)).blas_kernel} here, " in last
        assert f", {recorded.blas_kernel} recorded" in last
    if "OPENBLAS_NUM_THREADS" in here:
        assert "BLAS threads 2 here, 1 recorded" in last
    if "NPY_DISABLE_CPU_FEATURES" in recorded_on:
        assert recorded.numpy_simd == ""
        assert "baseline only recorded" in last

    pinned = reproduce_on(tmp_path, store, run_id, on(**here))
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert pinned.stdout.strip().splitlines()[-1].startswith("identical: ")
    assert "not bit for bit" not in pinned.stderr
    assert recorded_machine(store, newest(store)) == recorded


def newest(store: str) -> str:
    return max(all_runs(store), key=lambda r: r.info.start_time).info.run_id


def test_loops_this_cpu_lacks_make_an_equivalent_run_and_say_why(tmp_path, store):
    if not AVX512_TARGETS:
        pytest.skip("this CPU has no AVX-512: numpy dispatches nothing it could lack")
    run_id = train_on(tmp_path, store, on(), *SMALL_RUN, "optim=sgd")
    laptop = on(NPY_DISABLE_CPU_FEATURES=" ".join(AVX512_TARGETS))
    done = reproduce_on(tmp_path, store, run_id, laptop)
    assert done.returncode == 3, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert f"({' '.join(AVX512_TARGETS)} off or not on this CPU)" in last, last
    assert last.startswith("equivalent within 1e-12 (largest deviation ")
    strict = reproduce_on(tmp_path, store, run_id, laptop, "--tolerance", "0")
    assert strict.returncode == 1
    assert strict.stdout.strip().splitlines()[-1].startswith("different: ")


def test_a_run_on_two_cpus_is_reproduced_on_one(tmp_path, store):
    """Two stripes (digits' shapes, 128 hidden, 3 seeds) run on two threads of ours there, one
    here."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs")
    run_id = train_on(
        tmp_path, store, on(), *SMALL_RUN, "model.hidden=128", "train.seeds=3", "optim.epochs=3"
    )
    done = on_cpu_0(tmp_path, on(), "nnexp", "reproduce", run_id, "--tracking-uri", store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert recorded_machine(store, newest(store)).cpus == "1"


def test_a_deterministic_run_has_the_same_bits_on_any_cpu(tmp_path, store):
    """model.deterministic=true, on two stripes: 2 CPUs, the machine's kernel and loops, against
    1 CPU, 1 BLAS thread, Haswell's kernel and no AVX-512."""
    needs_avx2()
    run = (*SMALL_RUN, "model.hidden=128", "train.seeds=3", "optim.epochs=3")
    run = (*run, "model.deterministic=true")
    first = train_on(tmp_path, store, on(), *run)
    other = on(OPENBLAS_CORETYPE="Haswell", OPENBLAS_NUM_THREADS="1")
    if AVX512_TARGETS:
        other["NPY_DISABLE_CPU_FEATURES"] = " ".join(AVX512_TARGETS)
    done = on_cpu_0(tmp_path, other, "nnexp-train", f"tracking.uri={store}", *run)
    assert done.returncode == 0, done.stderr
    second = newest(store)
    assert second != first
    for run_id in (first, second):
        assert recorded_machine(store, run_id).blas_kernel == machine.BASELINE_KERNEL
        assert recorded_machine(store, run_id).numpy_simd == ""
    differences = compare(mlflow_client(store), first, second, tmp_path / "compared")
    assert {d.name for d in differences} >= {"W1", "W2", "train_cost/seed_0", "test_cost/seed_2"}
    assert [d for d in differences if d.difference] == []

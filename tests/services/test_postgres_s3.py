"""The production stores for real: one `nnexp server` on PostgreSQL with its artifacts in S3
(Ceph's RADOS Gateway), started once for the module, takes a 24-job parallel sweep without losing
or doubling a point, keeps every file of it in the bucket, reports it exactly as SQLite does and
reproduces its runs; a database that cannot be reached is one line within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import (
    ServerProcess,
    all_runs,
    assert_one_line_error,
    clean_env,
    free_port,
    metric_steps,
    run_app,
    run_cli,
    sweep_runs,
)

#: One pytest-xdist worker for the module, so that its module fixtures (the production server
#: holding the 24-job sweep, the same sweep in SQLite) are built once, not once per worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]

EPOCHS = 30
JOBS = 24
GRID = ["model.hidden=1,2,3,4,5,6", "optim.lr=0.25,0.5,1,2"]
BUCKET = "nnexp-artifacts"
#: A hang detector for a server's start: migrating a fresh PostgreSQL schema and starting the
#: workers takes minutes on a machine loaded by other jobs.
SERVER_START = 600


def sweep(folder: Path, uri: str, *launcher: str, run=run_cli) -> None:
    """The 24-job grid into ``uri``, launched by ``launcher`` (Hydra overrides), by ``run``
    (``run_app``: in-process)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = run(
        "nnexp-train", "-m", f"tracking.uri={uri}", f"optim.epochs={EPOCHS}",
        "tracking.log_model=false", *GRID, *launcher, cwd=folder, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@dataclass(frozen=True)
class Production:
    """A running production-shaped server: its URI, its database's URI, its working folder."""

    uri: str
    database: str
    folder: Path


@pytest.fixture(scope="module")
def production(ceph_starting, postgres, s3, tmp_path_factory) -> Iterator[Production]:
    """`nnexp server --backend-store-uri postgresql://… --artifacts-destination s3://…` (two
    workers) after the 24-job sweep went into it on 4 joblib workers; it runs until the module
    ends. The jobs, as any client of the server, need no S3 credentials: the server has them.
    (``ceph_starting`` first: Ceph starts while PostgreSQL does.)"""
    folder = tmp_path_factory.mktemp("production")
    s3.client().create_bucket(Bucket=BUCKET)
    server = ServerProcess(
        folder / "server", free_port(),
        "--backend-store-uri", postgres.createdb("sweep"),
        "--artifacts-destination", f"s3://{BUCKET}/mlflow",
        env=clean_env(**s3.env),
    )  # fmt: skip
    try:
        server.start(timeout=SERVER_START)
        sweep(folder / "launch", server.uri, "hydra/launcher=joblib", "hydra.launcher.n_jobs=4")
        yield Production(server.uri, postgres.uri("sweep"), server.folder)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sqlite_sweep(tmp_path_factory) -> str:
    """The SQLite store of the same 24-job sweep, its jobs one after another in one process
    (Hydra's basic launcher): how jobs are launched is no part of what a report shows, and the
    PostgreSQL sweep is the one whose parallel jobs are checked."""
    folder = tmp_path_factory.mktemp("sqlite-sweep")
    uri = f"sqlite:///{folder}/mlflow.db"
    sweep(folder, uri, run=run_app)
    return uri


def bucket_keys(s3) -> set[str]:
    """Every key under mlflow/ in the bucket."""
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="mlflow/")
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def children(uri: str) -> list:
    return sweep_runs(uri)[1]


def test_24_jobs_through_a_postgresql_server_lose_and_double_nothing(production):
    uri = production.uri
    parents, found = sweep_runs(uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(found) == JOBS and len(all_runs(uri)) == JOBS + 1
    assert {c.info.status for c in found} == {"FINISHED"}
    assert len({c.data.tags["nnexp.config_hash"] for c in found}) == JOBS
    assert parents[0].data.metrics["children_finished"] == JOBS
    for child in found:
        for key in ("train_cost", "test_cost"):
            assert metric_steps(uri, child.info.run_id, key) == list(range(EPOCHS + 1))


def report(uri: str, out: Path) -> dict[str, bytes]:
    """`nnexp report nnexp` of ``uri``: each file's bytes, every run id replaced by its name
    (the ids are the one thing two stores cannot share)."""
    done = run_app(
        "nnexp", "report", "nnexp", "--tracking-uri", uri, "--out", str(out), cwd=out.parent
    )
    assert done.returncode == 0, done.stderr
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    for run in children(uri):
        for name, content in files.items():
            files[name] = content.replace(run.info.run_id.encode(), run.info.run_name.encode())
    return files


def test_report_from_postgresql_is_byte_identical_to_the_report_from_sqlite(
    production, sqlite_sweep, tmp_path
):
    from_postgres = report(production.uri, tmp_path / "postgres")
    from_sqlite = report(sqlite_sweep, tmp_path / "sqlite")
    assert sorted(from_postgres) == sorted(from_sqlite)
    assert any(name.startswith("figures/") for name in from_postgres)
    # The manifest holds each file's SHA-256, taken before run ids are set aside: it differs as
    # the ids do, and the files it vouches for are compared one by one.
    from_postgres.pop(".nnexp-report.json")
    for name, content in from_postgres.items():
        assert content == from_sqlite[name], name


def test_reproduce_through_the_postgresql_server_is_identical(production, s3, tmp_path):
    """The logged config and weights come from S3 through the server; the new run's go there."""
    original = children(production.uri)[0].info.run_id
    done = run_app("nnexp", "reproduce", original, "--tracking-uri", production.uri, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("identical: run ")
    new = last.split()[2]
    assert any(k.endswith(f"/{new}/artifacts/weights.npz") for k in bucket_keys(s3)), new


def test_reproduce_from_the_database_says_the_artifacts_need_the_server(production, tmp_path):
    run_id = children(production.uri)[0].info.run_id
    done = run_cli(
        "nnexp", "reproduce", run_id, "--tracking-uri", production.database, cwd=tmp_path
    )
    assert_one_line_error(done, "mlflow-artifacts:", "--tracking-uri http://HOST:PORT")


@pytest.mark.parametrize(
    ("command", "database"),
    [
        (["nnexp-train", "optim.epochs=2", "tracking.uri={uri}"], "nobody listens"),
        (
            ["nnexp-train", "-m", "optim.epochs=2", "model.hidden=1,2", "tracking.uri={uri}"],
            "missing",
        ),
        (["nnexp", "server", "--port", "{port}", "--backend-store-uri", "{uri}"], "nobody listens"),
        (["nnexp", "report", "nnexp", "--tracking-uri", "{uri}"], "missing"),
    ],
    ids=["train-port", "sweep-database", "server-port", "report-database"],
)
def test_an_unreachable_database_is_one_line(postgres, tmp_path, command, database):
    if database == "missing":
        uri, reason = postgres.uri("nothing_here"), 'database "nothing_here" does not exist'
    else:
        uri, reason = f"postgresql://postgres@127.0.0.1:{free_port()}/mlflow", "Connection refused"
    args = [part.format(uri=uri, port=free_port()) for part in command]
    done = run_cli(*args, cwd=tmp_path, timeout=60)
    assert_one_line_error(done, "cannot connect to the database", reason, "create the database")
    assert not list(tmp_path.rglob("weights.npz"))


def test_a_production_server_keeps_every_artifact_in_s3(production, s3, tmp_path):
    parents, found = sweep_runs(production.uri)
    assert len(found) == JOBS
    parent = parents[0].info.run_id
    made = run_app("nnexp", "report", parent, "--tracking-uri", production.uri, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    keys = bucket_keys(s3)
    for child in found:
        for name in ("weights.npz", "config.yaml", "cost_curve.png", "costs.csv"):
            assert any(k.endswith(f"/{child.info.run_id}/artifacts/{name}") for k in keys), name
    assert any(k.endswith(f"/{parent}/artifacts/report/report.md") for k in keys)
    assert not list(production.folder.glob("mlartifacts"))

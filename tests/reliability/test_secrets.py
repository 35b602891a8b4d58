"""Secrets are never stored or printed: a password in a tracking URI is redacted from the store,
every output folder and every console line, while the jobs still log in with it; and MLflow's
usage telemetry is off unless the user opts back in."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import urllib.request
from pathlib import Path
from unittest import mock
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import clean_env, free_port, run_app, run_cli, sweep_runs
from nnexp.errors import UserError
from nnexp.safety.privacy import (
    MASK,
    PRIVATE_URIS_ENV,
    hide_secret_args,
    redact,
    redact_tree,
    reveal,
    without_secrets,
)
from nnexp.tracking.uri import check_server, resolve_uri, split_credentials
from reliability.conftest import ADMIN_PASSWORD, ON_AUTH_SERVER

USER = "alice"
#: Alice's password, with the characters that make URIs hard (an unencoded @ and :).
SECRET = "Zq8x-p@ss:w0rd-Kv3m"
#: Every form the password could be written in: plain, percent-encoded, as a basic-auth header.
NEEDLES = [
    SECRET.encode(),
    quote(SECRET, safe="").encode(),
    base64.b64encode(f"{USER}:{SECRET}".encode()),
]
#: The server of a loaded machine can be slow to answer; this is a hang detector only.
PATIENT = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "120"}

# --- the redaction function -------------------------------------------------------------------

USERS = st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=12)
#: Anything but blanks and quotes: @, :, / and % included.
PASSWORDS = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="'\""),
    min_size=1,
    max_size=24,
)
HOSTS = st.sampled_from(["127.0.0.1:5000", "db-host", "db.example.org:5432", "[::1]:8080"])
SCHEMES = st.sampled_from(["http", "https", "postgresql", "postgresql+psycopg2", "mysql"])
TAILS = st.sampled_from(["", "/", "/mlflow", "/db?sslmode=require", "/#/experiments/1"])


@given(SCHEMES, USERS, PASSWORDS, HOSTS, TAILS)
def test_a_uri_password_is_replaced_by_the_mask_and_nothing_else_changes(
    scheme, user, password, host, tail
):
    uri = f"{scheme}://{user}:{password}@{host}{tail}"
    assert redact(uri) == f"{scheme}://{user}:{MASK}@{host}{tail}"
    assert redact(f"run `mlflow ui --backend-store-uri {uri}` now") == (
        f"run `mlflow ui --backend-store-uri {scheme}://{user}:{MASK}@{host}{tail}` now"
    )
    assert redact(f"tracking.uri='{uri}'") == f"tracking.uri='{redact(uri)}'"


@given(USERS, PASSWORDS.filter(lambda p: not set(p) & set("&;#")))
def test_credential_fields_are_masked(user, password):
    assert redact(f"postgresql://{user}@h/db?sslmode=require&password={password}") == (
        f"postgresql://{user}@h/db?sslmode=require&password={MASK}"
    )
    assert redact(f"+db.api_key={password} x=1") == f"+db.api_key={MASK} x=1"
    assert redact(f"host=h sslpassword={password} port=5") == f"host=h sslpassword={MASK} port=5"


@given(st.text(max_size=80))
def test_redaction_is_idempotent(text):
    assert redact(redact(text)) == redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "sqlite:////abs/path/mlflow.db",
        "http://127.0.0.1:5000/#/experiments/1/runs/0f9f",
        "https://token@host/path",
        "postgresql://user@db-host/mlflow",
        "nnexp-train -m model.hidden=2,4 optim.lr=0.5",
        "mail alice@example.org about tokenizers",
    ],
)
def test_text_without_a_credential_is_left_alone(text):
    assert redact(text) == text


def test_hydra_escaped_overrides_are_redacted():
    assert redact(r"- tracking.uri=http\://alice\:pw@127.0.0.1\:5000") == (
        rf"- tracking.uri=http\://alice\:{MASK}@127.0.0.1\:5000"
    )


def test_config_trees_mask_credential_keys_and_params_leave_them_out():
    tree = {
        "tracking": {"uri": "postgresql://u:pw@h/db", "experiment": "x"},
        "db": {"password": "pw", "api_token": None, "port": 5},
        "model": {"hidden": 3},
    }
    assert redact_tree(tree) == {
        "tracking": {"uri": f"postgresql://u:{MASK}@h/db", "experiment": "x"},
        "db": {"password": MASK, "api_token": None, "port": 5},
        "model": {"hidden": 3},
    }
    assert without_secrets(tree) == {
        "tracking": {"uri": "postgresql://u:pw@h/db", "experiment": "x"},
        "db": {"port": 5},
        "model": {"hidden": 3},
    }


@given(USERS, PASSWORDS.filter(lambda p: p != MASK), HOSTS)
def test_a_hidden_argument_is_revealed_to_the_job_and_only_to_it(user, password, host):
    uri = f"postgresql://{user}:{password}@{host}/db"
    saved = os.environ.pop(PRIVATE_URIS_ENV, None)
    try:
        args, hidden = hide_secret_args(["-m", f"tracking.uri={uri}", "model.hidden=2,4"])
        assert hidden
        assert args == ["-m", f"tracking.uri={redact(uri)}", "model.hidden=2,4"]
        assert reveal(redact(uri)) == uri
        del os.environ[PRIVATE_URIS_ENV]
        assert reveal(redact(uri)) == f"postgresql://{user}@{host}/db"
    finally:
        os.environ.pop(PRIVATE_URIS_ENV, None)
        if saved is not None:
            os.environ[PRIVATE_URIS_ENV] = saved


def test_http_userinfo_is_split_off_as_basic_auth():
    assert split_credentials("http://alice:p%40ss@127.0.0.1:5000/x") == (
        "http://127.0.0.1:5000/x",
        "alice",
        "p@ss",
    )
    assert split_credentials(f"https://{USER}:{SECRET}@h") == ("https://h", USER, SECRET)
    assert split_credentials("http://h:5000") == ("http://h:5000", None, None)
    assert split_credentials("postgresql://u:pw@h/db") == ("postgresql://u:pw@h/db", None, None)


def test_reachability_check_parses_the_host_and_never_shows_the_password():
    port = free_port()
    with pytest.raises(UserError) as caught:
        check_server(f"http://{USER}:{SECRET}@127.0.0.1:{port}")
    message = str(caught.value)
    assert f"cannot reach the MLflow server at http://{USER}:{MASK}@127.0.0.1:{port}" in message
    assert "refused" in message
    assert SECRET not in message


def unreachable_run(folder: Path, password: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """nnexp-train against a closed port with ``password`` in the URI: exit 2, a warning and an
    error line that names the server with the password masked; the process and its lines."""
    port = free_port()
    done = run_app(
        "nnexp-train", "optim.epochs=1", f"tracking.uri=http://{USER}:{password}@127.0.0.1:{port}",
        cwd=folder,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert [line.split(":", 1)[0] for line in lines] == ["warning", "error"], lines
    assert f"at http://{USER}:{MASK}@127.0.0.1:{port} (" in lines[1]
    return done, lines


def test_an_unreachable_server_is_one_error_line_and_one_warning_without_the_password(tmp_path):
    done, lines = unreachable_run(tmp_path, SECRET)
    assert "MLFLOW_TRACKING_PASSWORD" in lines[0] and "PGPASSWORD" in lines[0]
    assert_no_leak(tmp_path, [done])


# --- the whole path against a real server with basic auth -------------------------------------


def create_user(server_uri: str, user: str, password: str) -> None:
    """Have the server's admin create a user (MLflow's basic-auth REST API)."""
    request = urllib.request.Request(
        f"{server_uri}/api/2.0/mlflow/users/create",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic "
            + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


def leaks(folder: Path, outputs: list[subprocess.CompletedProcess]) -> list[str]:
    """Where any form of the password appears: files under ``folder`` (byte for byte), the SQL
    dump of every SQLite database there, and the commands' stdout and stderr."""
    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if any(needle in path.read_bytes() for needle in NEEDLES):
            found.append(str(path))
        if path.suffix == ".db":
            with sqlite3.connect(path) as database:
                dump = "\n".join(database.iterdump()).encode()
            if any(needle in dump for needle in NEEDLES):
                found.append(f"{path} (SQL dump)")
    for number, done in enumerate(outputs):
        for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            if any(needle.decode() in text for needle in NEEDLES):
                found.append(f"command {number} {name}")
    return found


def assert_no_leak(folder: Path, outputs: list[subprocess.CompletedProcess]) -> None:
    assert leaks(folder, outputs) == []


@pytest.mark.slow
@ON_AUTH_SERVER
def test_a_password_in_the_uri_is_never_stored_or_printed(tmp_path, auth_server, monkeypatch):
    server = auth_server
    work = tmp_path / "work"
    work.mkdir()
    outputs = []
    create_user(server.uri, USER, SECRET)
    with_password = server.uri.replace("://", f"://{USER}:{SECRET}@")
    env = clean_env(**PATIENT)
    sweep_args = [
        "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "model.hidden=2,3", "optim.epochs=5", "tracking.experiment=secrets",
    ]  # fmt: skip
    sweep = run_cli(
        "nnexp-train", *sweep_args, f"tracking.uri={with_password}",
        cwd=work, env=env, timeout=1200,
    )  # fmt: skip
    outputs.append(sweep)
    assert sweep.returncode == 0, sweep.stderr
    warnings = [line for line in sweep.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "MLFLOW_TRACKING_PASSWORD" in warnings[0], sweep.stderr

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    (parent,), children = sweep_runs(server.uri, "secrets")
    assert sorted(run.info.status for run in children) == ["FINISHED", "FINISHED"]
    assert f"tracking.uri=http://{USER}:{MASK}@127.0.0.1:" in parent.data.tags["nnexp.command"]
    (sweep_file,) = work.glob("multirun/*/*/.nnexp_sweep.json")
    assert json.loads(sweep_file.read_text())["tracking_uri"] == redact(with_password)

    # Resume takes the password from the environment: same parent, every job skipped.
    resume_env = clean_env(
        MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=SECRET, **PATIENT
    )
    resume = run_cli(
        "nnexp-train", *sweep_args, f"tracking.uri={server.uri}", "sweep.resume=true",
        cwd=work, env=resume_env, timeout=1200,
    )  # fmt: skip
    outputs.append(resume)
    assert resume.returncode == 0, resume.stderr
    assert f"sweep {parent.info.run_id}: 2 skipped" in resume.stdout, resume.stdout

    # Report and reproduce in-process: what they print and write is the subject, not their process.
    store = ["--tracking-uri", with_password]
    report = run_app("nnexp", "report", parent.info.run_id, *store, cwd=work, env=env)
    outputs.append(report)
    assert report.returncode == 0, report.stderr
    child = children[0].info.run_id
    again = run_app("nnexp", "reproduce", child, *store, cwd=work, env=env)
    outputs.append(again)
    assert again.returncode == 0, again.stderr
    assert f"reproduces {child} bit for bit" in again.stdout

    environ = Path(f"/proc/{server.process.pid}/environ").read_bytes().split(b"\0")
    assert b"MLFLOW_DISABLE_TELEMETRY=true" in environ
    # The server's folder (store, artifacts, auth files, log) is scanned with the work folder.
    files = [p for folder in (work, server.folder) for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 40 and any(p.name == "report.html" for p in files)
    assert_no_leak(work, outputs)
    assert_no_leak(server.folder, [])


# --- telemetry ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "disabled"), [(None, True), ("false", False), ("true", True)],
    ids=["default", "opted in", "opted out"],
)  # fmt: skip
def test_mlflow_telemetry_is_off_unless_the_user_opts_in(tmp_path, store, setting, disabled):
    from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY

    env = clean_env() if setting is None else clean_env(MLFLOW_DISABLE_TELEMETRY=setting)
    args = [f"tracking.uri={store}", "optim.epochs=1", "tracking.log_model=false"]
    done = run_app("nnexp-train", *args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    with mock.patch.dict(os.environ, done.environ, clear=True):
        assert MLFLOW_DISABLE_TELEMETRY.get() is disabled, done.environ


# --- passwords with every character a URI gives a meaning to --------------------------------

#: Letters and every character that ends or splits a URI's user part, quotes and a blank included.
URL_SPECIAL = ":/?#[]@!$&'()*+,;=% \""
ANY_PASSWORD = st.text(st.sampled_from("Zq9xK" + URL_SPECIAL), min_size=4, max_size=24).filter(
    lambda p: unquote(p) == p and MASK not in p and len(set(p) - set(URL_SPECIAL)) >= 2
)


@given(ANY_PASSWORD)
def test_a_password_of_any_characters_is_hidden_and_reaches_the_right_host(password):
    """The argument Hydra sees holds the mask alone; the URI the job uses parses to the typed
    host, port, user and password; every line about it (the unreachable server) shows none of
    the password."""
    port = free_port()
    saved = os.environ.pop(PRIVATE_URIS_ENV, None)
    try:
        args, hidden = hide_secret_args([f"tracking.uri=http://{USER}:{password}@127.0.0.1:{port}"])
        assert hidden
        assert args == [f"tracking.uri=http://{USER}:{MASK}@127.0.0.1:{port}"]
        uri = resolve_uri(args[0].split("=", 1)[1], Path("/tmp"))
        parts = urlsplit(uri)
        assert (parts.hostname, parts.port, parts.username) == ("127.0.0.1", port, USER)
        assert unquote(parts.password) == password
        assert split_credentials(uri) == (f"http://127.0.0.1:{port}", USER, password)
        with pytest.raises(UserError) as caught:
            check_server(uri)
        for text in (str(caught.value), redact(uri), redact(f"at {uri}: refused")):
            assert MASK in text
            assert not leaked(password, text, port), text
    finally:
        os.environ.pop(PRIVATE_URIS_ENV, None)
        if saved is not None:
            os.environ[PRIVATE_URIS_ENV] = saved


def leaked(password: str, text: str, port: int | None = None) -> bool:
    """Whether ``text`` shows a piece (3 characters or more holding a letter) of the password,
    as typed or percent-encoded; pieces of the user, host and ``port`` the text may name are no
    leak (``'9`` encodes as ``%279``, and port 60279 holds ``279``), nor is a piece that straddles
    the masked URI and the text after it (``9: `` in ``…:55629: refused``): that URI is set aside
    first."""
    forms = (password, quote(password, safe=""))
    public = f"{USER} 127.0.0.1 {port or ''}"
    if port is not None:
        text = text.replace(f"http://{USER}:{MASK}@127.0.0.1:{port}", "\0")
    return any(
        form[i : i + 3] in text
        for form in forms
        for i in range(len(form) - 2)
        if any(c.isalnum() for c in form[i : i + 3]) and form[i : i + 3] not in public
    )


@pytest.mark.parametrize("password", ["Zq9/Sec?ret", "Zq9 S'ec#ret"], ids=["issue 25", "blank"])
def test_the_cli_shows_no_piece_of_a_password_with_uri_characters(tmp_path, password):
    done, _ = unreachable_run(tmp_path, password)
    assert "Traceback" not in done.stderr
    assert not leaked(password, done.stdout + done.stderr), done.stderr
    assert not any(leaked(password, p.read_text(errors="replace")) for p in files(tmp_path))


def files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]

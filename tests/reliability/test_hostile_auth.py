"""`nnexp server --auth` against careless or hostile setups: any padded or weak password is
refused, the password reaches MLflow whatever characters it holds, a restart rotates it, inherited
MLFLOW_AUTH_* settings never win, and the auth folder is private and follows no links."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import ServerProcess, assert_one_line_error, clean_env, free_port, run_cli, status
from nnexp.errors import UserError
from nnexp.tracking.auth import MIN_DISTINCT, admin_password, auth_config

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
STRONG = "Tr0ub4dor&3-horse"


#: Any unpadded text of 12 to 40 characters drawn from fewer than MIN_DISTINCT different ones.
FEW_DISTINCT = (
    st.lists(st.characters(), min_size=1, max_size=MIN_DISTINCT - 1, unique=True)
    .flatmap(lambda alphabet: st.text(alphabet=alphabet, min_size=12, max_size=40))
    .filter(lambda password: password == password.strip())
)


@given(FEW_DISTINCT)
def test_any_password_with_few_distinct_characters_is_refused(password):
    with pytest.raises(UserError, match="characters"):
        admin_password({"NNEXP_ADMIN_PASSWORD": password})


@given(
    st.sampled_from(" \t\n"),
    st.booleans(),
    st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=12),
)
def test_any_padded_password_is_refused(space, leading, password):
    padded = space + password if leading else password + space
    with pytest.raises(UserError, match="white space"):
        admin_password({"NNEXP_ADMIN_PASSWORD": padded})


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", " " + STRONG, "abcabcabcabc"])
def test_weak_or_padded_password_is_one_line_before_anything_is_created(tmp_path, password):
    env = clean_env(NNEXP_ADMIN_PASSWORD=password)
    done = run_cli("nnexp", "server", "--auth", "--port", "1", cwd=tmp_path, env=env)
    assert_one_line_error(done, "NNEXP_ADMIN_PASSWORD")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["basic_auth.ini", "basic_auth.db"])
def test_auth_files_never_follow_a_link(tmp_path, name):
    folder = tmp_path / "mlflow-auth"
    folder.mkdir(mode=0o755)
    victim = tmp_path / "victim.txt"
    victim.write_text("user data\n")
    (folder / name).symlink_to(victim)
    try:
        config = auth_config(folder)
    except UserError as err:
        assert name == "basic_auth.db" and "link" in str(err)
    else:
        assert name == "basic_auth.ini" and not config.is_symlink()
    assert victim.read_text() == "user data\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_auth_folder_that_is_a_link_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "mlflow-auth").symlink_to(elsewhere)
    with pytest.raises(UserError, match="not a folder of yours"):
        auth_config(tmp_path / "mlflow-auth")
    assert list(elsewhere.iterdir()) == []


def private(path: Path, mode: int) -> bool:
    return stat.S_IMODE(path.lstat().st_mode) == mode


@pytest.mark.slow
def test_restart_rotates_the_admin_password_and_inherited_settings_never_win(
    tmp_path, empty_store_file
):
    folder = tmp_path / "server"
    folder.mkdir()
    shutil.copyfile(empty_store_file, folder / "mlflow.db")  # the tracking store is not the subject
    first = "50%-off%(x)s-" + STRONG
    second = "rotated-" + STRONG
    inherited = {"MLFLOW_AUTH_ADMIN_PASSWORD": "inherited-" + STRONG}
    for password, wrong in ((first, inherited["MLFLOW_AUTH_ADMIN_PASSWORD"]), (second, first)):
        env = {**clean_env(NNEXP_ADMIN_PASSWORD=password), **inherited}
        server = ServerProcess(folder, free_port(), "--auth", "--workers", "1", env=env).start()
        try:
            assert status(server.uri + SEARCH, "admin", password, timeout=120) == 200
            assert status(server.uri + SEARCH, "admin", wrong, timeout=120) == 401
        finally:
            server.stop()
        auth = folder / "mlflow-auth"
        assert private(auth, 0o700)
        assert private(auth / "basic_auth.ini", 0o600) and private(auth / "basic_auth.db", 0o600)
        assert password not in (auth / "basic_auth.ini").read_text()
        assert password not in (folder / "server.log").read_text()


def test_port_out_of_range_is_one_line(tmp_path):
    done = run_cli("nnexp", "server", "--port", "70000", cwd=tmp_path)
    assert_one_line_error(done, "--port 70000", "65535")
    assert list(tmp_path.iterdir()) == []

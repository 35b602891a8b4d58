"""`nnexp server --auth`: the admin password, checked, and MLflow's basic-auth state kept private.

The password reaches MLflow only through ``MLFLOW_AUTH_ADMIN_PASSWORD`` in the server's own
environment (never a config file MLflow parses), and a restart with a new password rotates the
admin's password in ``basic_auth.db``. The folder is 0700 and its files 0600, created without
following symbolic links."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nnexp.errors import UserError

#: The shortest admin password `--auth` accepts, and how many different characters it needs.
MIN_PASSWORD = 12
MIN_DISTINCT = 8
ADMIN = "admin"
PASSWORD_HINT = "e.g. export NNEXP_ADMIN_PASSWORD=$(openssl rand -base64 18)"
#: How long a server worker trusts a password it has checked (MLflow's auth_cache_ttl_seconds):
#: each check is a deliberately slow scrypt hash (~0.15 s), and a sweep job makes ~30 requests.
AUTH_CACHE_SECONDS = 60


def admin_password(environ: dict[str, str]) -> str:
    """The admin password from $NNEXP_ADMIN_PASSWORD: no default, no padding, ≥ 12 characters of
    which ≥ 8 differ (``aaaaaaaaaaaa`` is refused)."""
    password = environ.get("NNEXP_ADMIN_PASSWORD", "")
    if password != password.strip():
        raise UserError(
            "$NNEXP_ADMIN_PASSWORD starts or ends with white space, which logins drop; "
            f"set it without the padding ({PASSWORD_HINT})"
        )
    if len(password) < MIN_PASSWORD or len(set(password)) < MIN_DISTINCT:
        raise UserError(
            f"--auth needs an admin password of at least {MIN_PASSWORD} characters, "
            f"{MIN_DISTINCT} of them different, in $NNEXP_ADMIN_PASSWORD; {PASSWORD_HINT}"
        )
    return password


def private_folder(folder: Path) -> Path:
    """``folder`` created 0700 (or made 0700): a real folder owned by this user, not a link."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.lstat()
    except OSError as err:
        raise UserError(f"cannot create {folder}: {err.strerror}; check its parent") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise UserError(
            f"{folder} is not a folder of yours (a link or another user's); remove it and retry"
        )
    folder.chmod(0o700)
    return folder


def private_file(path: Path, text: str | None = None) -> Path:
    """Create ``path`` 0600 without following a link; with ``text``, write it to a fresh file
    that replaces ``path`` (a link at ``path`` is replaced, its target never touched)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        if text is None:
            fd = os.open(path, flags, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
            return path
        fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(fresh, flags | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
        fresh.replace(path)
    except OSError as err:
        raise UserError(
            f"cannot write {path}: {err.strerror} (a link there is refused); remove it and retry"
        ) from None
    return path


def auth_config(folder: Path) -> Path:
    """MLflow's basic-auth settings in ``folder``: no password in them (it goes by environment);
    a checked password is trusted for AUTH_CACHE_SECONDS by the worker that checked it."""
    private_folder(folder)
    database = private_file(folder / "basic_auth.db")
    location = str(database)
    if any(c in location for c in "\r\n"):
        raise UserError(f"the folder {folder} has a line break in its path; start elsewhere")
    return private_file(
        folder / "basic_auth.ini",
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{location.replace('%', '%%')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {AUTH_CACHE_SECONDS}\n",
    )


def rotate_admin(database: Path, password: str) -> bool:
    """Set the admin's password in an existing ``basic_auth.db`` (MLflow sets it only when it
    creates the admin); True when it changed."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{database}")
    try:
        if not store.has_user(ADMIN) or store.authenticate_user(ADMIN, password):
            return False
        store.update_user(ADMIN, password=password)
        return True
    finally:
        store.engine.dispose()


def auth_environment(environ: dict[str, str], folder: Path, password: str) -> dict[str, str]:
    """The server's environment for ``--auth``: nnexp's settings, the admin by name and password
    (inherited ``MLFLOW_AUTH_*`` values never win), and the admin's password rotated if it
    changed since the last start."""
    config = auth_config(folder)
    rotate_admin(folder / "basic_auth.db", password)
    env = {k: v for k, v in environ.items() if not k.lstrip("_").startswith("MLFLOW_AUTH_")}
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
    env["MLFLOW_AUTH_ADMIN_USERNAME"] = ADMIN
    env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    return env

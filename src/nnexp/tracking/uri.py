"""Tracking URIs: resolve the default, accept only stores nnexp supports, and check them before a
run opens (an SQLite file's folder and format, a server's or a database's reachability). No
MLflow import."""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from nnexp.errors import UserError
from nnexp.safety.privacy import encode_password, redact, reveal

SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")
SQLITE_MAGIC = b"SQLite format 3\x00"
#: Seconds to wait for a tracking server's health check before giving up.
SERVER_TIMEOUT = 5.0
#: Seconds to wait for a database server to accept a connection (MLflow itself retries ~100 s).
DATABASE_TIMEOUT = 5
#: The database schemes checked before a run, each with the extra that installs its driver.
DATABASE_EXTRAS = {"postgresql": "postgres"}


def resolve_uri(configured: str | None, launch_dir: Path) -> str:
    """``configured`` (its password, if redacted, revealed), else $MLFLOW_TRACKING_URI, else
    sqlite:///<launch_dir>/mlflow.db, its password percent-encoded where it must be; a relative
    SQLite path is made absolute against ``launch_dir`` so every job shares one store."""
    uri = encode_password(
        (configured and reveal(configured))
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{launch_dir}/mlflow.db"
    )
    check_scheme(uri)
    if scheme_of(uri) == "sqlite":
        return f"sqlite:///{sqlite_path(uri, launch_dir)}"
    return uri.rstrip("/")


def scheme_of(uri: str) -> str:
    """The URI's scheme without a driver suffix (postgresql+psycopg2 → postgresql)."""
    return urlsplit(uri).scheme.split("+")[0]


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (http or https), not a database."""
    return scheme_of(uri) in ("http", "https")


def check_scheme(uri: str) -> None:
    """Reject the file store (refused by MLflow 3) and unknown schemes, saying what to use."""
    scheme = scheme_of(uri)
    if scheme in ("", "file"):
        raise UserError(
            f"tracking.uri={redact(uri)} names a folder, and MLflow 3 keeps runs in a database or "
            "a server: use sqlite:////ABSOLUTE/PATH/mlflow.db or http://HOST:PORT"
        )
    if scheme not in SCHEMES:
        raise UserError(
            f"tracking.uri={redact(uri)} has the unknown scheme {scheme!r}; use one of "
            f"{', '.join(SCHEMES)}, e.g. sqlite:////ABSOLUTE/PATH/mlflow.db"
        )


def sqlite_file(uri: str) -> Path | None:
    """The database file an sqlite:/// URI names as written; None for any other URI."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def sqlite_path(uri: str, launch_dir: Path) -> Path:
    """The database file of an sqlite:/// URI, absolute."""
    path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        raise UserError(
            f"tracking.uri={uri} is an in-memory store that loses every run; "
            "use sqlite:////ABSOLUTE/PATH/mlflow.db"
        )
    return (launch_dir / path).resolve()


def checked_uri(configured: str | None, launch_dir: Path) -> str:
    """The store's URI (``resolve_uri``), checked (``check_store``) before mlflow is imported,
    so a store that cannot work is one line within seconds."""
    uri = resolve_uri(configured, launch_dir)
    check_store(uri)
    return uri


def check_store(uri: str) -> None:
    """Fail fast, before any run opens, on a store that cannot work."""
    scheme = scheme_of(uri)
    if scheme == "sqlite":
        check_sqlite_file(Path(uri[len("sqlite:///") :]))
    elif scheme in ("http", "https"):
        check_server(uri)
    elif scheme in DATABASE_EXTRAS:
        check_database(uri)


def check_sqlite_file(path: Path) -> None:
    """The folder exists and takes new files; an existing file is an SQLite database."""
    folder = path.parent
    if not folder.is_dir():
        raise UserError(
            f"tracking store {path}: the folder {folder} does not exist; create it "
            "or point tracking.uri at an existing folder"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".nnexp-write-test-"):
            pass
    except OSError as err:
        raise UserError(
            f"tracking store {path}: cannot write in {folder} ({err.strerror}); "
            "point tracking.uri at a writable folder"
        ) from None
    if path.is_dir():
        raise UserError(f"tracking store {path} is a folder; name a database file, e.g. mlflow.db")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise UserError(
                    f"tracking store {path} exists but is not an SQLite database; nnexp will not "
                    "overwrite it: move it aside or point tracking.uri at another file"
                )


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """An http(s) URI without its ``user:password@`` part, and that user and password (None
    where absent); any other URI unchanged, with (None, None)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    public = urlunsplit(parts._replace(netloc=host))
    return public, unquote(user) or None, unquote(password) if colon else None


def check_server(uri: str) -> None:
    """The server answers its health check within SERVER_TIMEOUT seconds (a login is not
    needed to tell that it answers)."""
    shown = redact(uri)
    try:
        health = f"{split_credentials(uri)[0]}/health"
        with urllib.request.urlopen(health, timeout=SERVER_TIMEOUT) as response:
            response.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            return
        raise UserError(
            f"the MLflow server at {shown} answered its health check with HTTP {err.code}; "
            "is tracking.uri the server's address?"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(
            f"cannot reach the MLflow server at {shown} ({reason}); start it with `nnexp server` "
            "or fix tracking.uri"
        ) from None


def check_database(uri: str) -> None:
    """The database server accepts one connection to the named database within
    DATABASE_TIMEOUT seconds (the message names host, port and database, never a password)."""
    import sqlalchemy

    scheme = scheme_of(uri)
    try:
        engine = sqlalchemy.create_engine(
            uri,
            poolclass=sqlalchemy.pool.NullPool,
            connect_args={"connect_timeout": DATABASE_TIMEOUT},
        )
        with engine.connect():
            pass
    except ModuleNotFoundError as err:
        raise UserError(
            f"a {scheme}:// store needs the {err.name} driver: install nnexp"
            f"[{DATABASE_EXTRAS[scheme]}] (`make setup` does)"
        ) from None
    except (sqlalchemy.exc.ArgumentError, ValueError) as err:
        raise UserError(
            f"the {scheme}:// URI is malformed ({err}); write it as "
            f"{scheme}://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    except sqlalchemy.exc.DBAPIError as err:
        raise UserError(
            f"cannot connect to the database {_where(uri)} ({_database_reason(err)}); start the "
            "database server, create the database, or fix the URI"
        ) from None


def _where(uri: str) -> str:
    """A database URI without its user and password: scheme://host:port/database."""
    parts = urlsplit(uri)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _database_reason(err: Exception) -> str:
    """The driver's reason on one line: what follows its last 'failed:', without 'FATAL:'."""
    text = str(getattr(err, "orig", None) or err)
    line = next((part.strip() for part in text.splitlines() if part.strip()), text)
    reason = line.rsplit("failed: ", 1)[-1]
    return " ".join(reason.removeprefix("FATAL:").split())[:300]

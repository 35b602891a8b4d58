"""What nnexp keeps private. A credential in a URI (``user:PASSWORD@``, ``password=…``) is
replaced by ``***`` in everything nnexp stores or prints, while the job still connects with the
real value; and MLflow's usage telemetry is off unless the user opts back in. No MLflow import."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

MASK = "***"
#: Names of keys and query fields that hold a credential.
SECRET_WORDS = r"password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|credentials?"
#: Real URIs the user gave on the command line, for this process and the jobs it starts (whose
#: configs and sweep file hold only their redacted form).
PRIVATE_URIS_ENV = "NNEXP_PRIVATE_URIS"
TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"
ENVIRONMENT_ADVICE = (
    "a password in a URI stays in your shell history and the process list; nnexp keeps it out of "
    "everything it stores or prints, but put it in the environment instead: "
    "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD for http(s), PGPASSWORD or ~/.pgpass "
    "for PostgreSQL"
)

# scheme://user:SECRET@ — the secret runs to the last @ before a blank or a quote, so a password
# with an unencoded @, : or / is still hidden whole; also in Hydra's escaped form (http\://u\:p@).
_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*\\?://[^\s'\"/?#:@\\]*)(?P<colon>\\?:)(?P<secret>[^\s'\"]+)@"
)
# key=SECRET where the key names a credential (a query field, an override, a DSN field).
_FIELD = re.compile(
    rf"(?<![\w.-])(?P<key>[\w.-]*(?:{SECRET_WORDS})[\w.-]*)=(?P<secret>[^\s&;'\"#]+)", re.IGNORECASE
)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")
# scheme://user: at the start of a whole URI; its password runs to the URI's last @.
_USERINFO_HEAD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"/?#:@\\]*:")
#: What a password keeps unencoded in a URI: RFC 3986's sub-delims but the quote, ":" and "%"
#: (taken as already encoded).
_PASSWORD_SAFE = "!$&()*+,;=:%"


def redact(text: str) -> str:
    """``text`` with every URI password and every credential field's value replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['head']}{m['colon']}{MASK}@", text)
    return _FIELD.sub(lambda m: f"{m['key']}={MASK}", text)


def is_secret_key(key: str) -> bool:
    """Whether a (dotted) config key names a credential, by its last part."""
    return re.search(SECRET_WORDS, str(key).rsplit(".", 1)[-1], re.IGNORECASE) is not None


def redact_tree(tree: Any) -> Any:
    """A config tree with credential keys' values masked and every string redacted."""
    if isinstance(tree, Mapping):
        return {
            key: MASK if is_secret_key(key) and value is not None else redact_tree(value)
            for key, value in tree.items()
        }
    if isinstance(tree, list | tuple):
        return [redact_tree(value) for value in tree]
    return redact(tree) if isinstance(tree, str) else tree


def without_secrets(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A config tree without the keys that name a credential, at any depth."""
    return {
        key: without_secrets(value) if isinstance(value, Mapping) else value
        for key, value in tree.items()
        if not is_secret_key(key)
    }


def redact_values(values: Mapping[str, object]) -> dict[str, str]:
    """Tags or params as strings, redacted."""
    return {key: redact(str(value)) for key, value in values.items()}


def split_password(uri: str) -> tuple[str, str, str] | None:
    """(``scheme://user:``, the password, ``@host…``) of a whole URI whose password may hold
    any character, ``/ ? # @`` and blanks included (it runs to the last @, as in ``redact``:
    ``scheme://host:5000/a@b`` reads as user ``host``); None without one."""
    head = _USERINFO_HEAD.match(uri)
    at = uri.rfind("@")
    if head is None or at < head.end():
        return None
    password = uri[head.end() : at]
    return head.group(), password, uri[at:]


def encode_password(uri: str) -> str:
    """``uri`` with the characters of its password that end a URI's user part (``/ ? # @``,
    blanks, quotes …) percent-encoded, so every URI parser reads the same host and password."""
    parts = split_password(uri)
    if parts is None:
        return uri
    head, password, tail = parts
    return f"{head}{quote(password, safe=_PASSWORD_SAFE)}{tail}"


def _masked(uri: str) -> str:
    """A whole URI with its password, whatever characters it holds, replaced by the mask."""
    parts = split_password(uri)
    return redact(uri) if parts is None else f"{parts[0]}{MASK}{parts[2]}"


def hide_secret_args(args: list[str]) -> tuple[list[str], bool]:
    """Command-line arguments with their URIs' passwords masked (so Hydra never sees, saves or
    logs one), the real URIs remembered for this process and its jobs; and whether any was found.
    A URI runs from its scheme to the end of the argument: the shell already split the words."""
    hidden, found = [], []
    for arg in args:
        start = _URI.search(arg)
        uri = arg[start.start() :] if start else ""
        if uri and _masked(uri) != uri:
            found.append(uri)
            hidden.append(arg[: start.start()] + _masked(uri))
        else:
            hidden.append(arg)
    if not found:
        return args, False
    remembered = json.loads(os.environ.get(PRIVATE_URIS_ENV, "[]"))
    os.environ[PRIVATE_URIS_ENV] = json.dumps(sorted({*remembered, *found}))
    return hidden, True


def reveal(uri: str) -> str:
    """The real URI behind a redacted one: a URI remembered from the command line or
    $MLFLOW_TRACKING_URI that redacts to it; else the URI without the masked password, so the
    credentials come from the environment."""
    if MASK not in uri:
        return uri
    candidates = json.loads(os.environ.get(PRIVATE_URIS_ENV, "[]"))
    candidates.append(os.environ.get("MLFLOW_TRACKING_URI", ""))
    for candidate in candidates:
        if candidate and uri in (_masked(candidate), redact(candidate)):
            return candidate
    return uri.replace(f":{MASK}@", "@", 1)


def telemetry_off_by_default() -> None:
    """Turn MLflow's usage telemetry off for this process and what it starts, unless the user
    set MLFLOW_DISABLE_TELEMETRY themselves (``false`` opts back in). Before ``import mlflow``."""
    os.environ.setdefault(TELEMETRY_ENV, "true")

"""Where ``certfleet login`` keeps the login: ``$XDG_CONFIG_HOME/certfleet/`` (else
``~/.config/certfleet/``), ``remote.json`` with the server's URL and token and ``ca.pem`` with
the pinned root and the CAs it signed; the directory 0700, the files 0600. How the CLI uses it
(and the environment that overrides it): :mod:`certfleet.cli._remote`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from certfleet.cli._common import die

__all__ = ["LOGIN_FILE", "ROOT_FILE", "SavedLogin", "config_dir", "forget_login", "save_login", "saved_login"]

LOGIN_FILE = "remote.json"
ROOT_FILE = "ca.pem"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/certfleet``, else ``~/.config/certfleet`` (XDG Base Directory)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "certfleet"


@dataclass(frozen=True)
class SavedLogin:
    url: str
    token: str
    ca_file: Path


def saved_login(environ: Mapping[str, str]) -> SavedLogin | None:
    """The saved login, or None when there is none; a damaged one: one line and exit 2."""
    directory = config_dir(environ)
    path = directory / LOGIN_FILE
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        die(f"cannot read the saved login {path}: {exc.strerror}")
    try:
        document = json.loads(raw)
        url, token = str(document["url"]), str(document["token"])
    except (ValueError, KeyError, TypeError):
        _broken(path)
    return SavedLogin(url, token, directory / ROOT_FILE)


def _broken(path: Path) -> NoReturn:
    die(f"the saved login {path} is damaged: run 'certfleet login' again (or 'certfleet logout')")


def save_login(url: str, token: str, ca_pem: bytes, environ: Mapping[str, str] | None = None) -> Path:
    """Write the login: the directory 0700, ``ca.pem`` and ``remote.json`` 0600 (the token is
    a secret; the root is not, but a file beside it stays as private as the directory)."""
    from certfleet.fs import write_atomic

    directory = config_dir(environ)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    write_atomic(directory / ROOT_FILE, ca_pem, mode=0o600)
    document = json.dumps({"url": url, "token": token}, indent=2) + "\n"
    write_atomic(directory / LOGIN_FILE, document.encode(), mode=0o600)
    return directory


def forget_login(environ: Mapping[str, str] | None = None) -> str | None:
    """Remove the saved login; the URL it was for, or None when there was none."""
    env = os.environ if environ is None else environ
    directory = config_dir(env)
    path = directory / LOGIN_FILE
    url: str | None = None
    try:
        url = str(json.loads(path.read_text()).get("url") or "") or None
    except FileNotFoundError:
        pass
    except (OSError, ValueError, AttributeError):
        url = "(damaged login)"
    for name in (LOGIN_FILE, ROOT_FILE):
        (directory / name).unlink(missing_ok=True)
    return url

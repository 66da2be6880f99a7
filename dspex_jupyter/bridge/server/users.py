"""Who a request is: the users file of a shared server, and the one-token private case.

A users file (``python -m dspex_jupyter.bridge add-user USERS_FILE NAME
[--admin]``) is JSON holding, per user, a key id, a random salt and
``HMAC-SHA256(salt, token)``, never a token. A token is
``dspex_<key id>_<secret>`` with a 256-bit random secret: it is not a password,
so a fast salted hash is right (a slow KDF would make creating a class of 500
users, and checking every request, slow for nothing). The key id finds the
user in O(1); the hash is compared in constant time.

With a users file, the principal of a request is the user whose token it
carries. With one shared ``--token`` (a kernel's private server), every caller
holding it is the one all-rights principal, and the ``dspex-principal`` it
asserts is only a label for cooperative access control, as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ... import errors as E

__all__ = ["Authenticator", "User", "add_user", "load_users"]

USERS_FORMAT = "dspex-users/1"
_PREFIX = "dspex"
_RELOAD_S = 1.0  # a running server sees add-user's changes within this long


@dataclass(frozen=True)
class User:
    name: str
    key_id: str
    salt: bytes
    digest: bytes
    admin: bool


def _digest(salt: bytes, token: str) -> bytes:
    return hmac.new(salt, token.encode(), hashlib.sha256).digest()


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise E.ValidationError(f"no users file at {path!r}") from None
    except (OSError, ValueError) as exc:
        raise E.ValidationError(f"cannot read the users file {path!r}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != USERS_FORMAT:
        raise E.ValidationError(f"{path!r} is not a dspex users file ({USERS_FORMAT})")
    return data


def _users(data: dict[str, Any], path: str) -> dict[str, User]:
    users: dict[str, User] = {}
    try:
        for name, entry in (data.get("users") or {}).items():
            user = User(
                name,
                entry["key_id"],
                bytes.fromhex(entry["salt"]),
                bytes.fromhex(entry["hash"]),
                bool(entry.get("admin")),
            )
            users[user.key_id] = user
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise E.ValidationError(f"malformed entry in the users file {path!r}: {exc}") from None
    return users


def load_users(path: str) -> dict[str, User]:
    """The users of ``path`` by key id; ``ValidationError`` if it is not a users file."""
    return _users(_read(path), path)


def add_user(path: str, name: str, admin: bool = False) -> str:
    """Create or update ``name`` in the users file at ``path``; return its new token.

    The file is rewritten atomically with mode 0600; the old token of ``name``
    stops working.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 256:
        raise E.ValidationError(f"a user name must be 1..256 characters, got {name!r}")
    data: dict[str, Any] = {"format": USERS_FORMAT, "users": {}}
    if os.path.exists(path):
        data = _read(path)  # refuses to overwrite something that is not a users file
        _users(data, path)
    key_id = secrets.token_hex(8)
    token = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    data["users"][name] = {
        "key_id": key_id,
        "salt": salt.hex(),
        "hash": _digest(salt, token).hex(),
        "admin": bool(admin),
    }
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(json.dumps(data, sort_keys=True))  # the C encoder: no indent
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return token


class Authenticator:
    """Checks a request's bearer token and says whose it is."""

    def __init__(self, token: str | None = None, users_path: str | None = None) -> None:
        if not token and not users_path:
            raise E.ValidationError("the bridge server needs a token or a users file")
        self._expected = f"Bearer {token}".encode() if token and not users_path else None
        self.users_path = users_path
        self._users: dict[str, User] = {}
        self._mtime = 0.0
        self._checked = 0.0
        self._lock = threading.Lock()
        if users_path:
            self._users = load_users(users_path)
            self._mtime = os.stat(users_path).st_mtime

    @property
    def shared(self) -> bool:
        """Whether principals come from a users file (a shared server)."""
        return self.users_path is not None

    def _current(self) -> dict[str, User]:
        now = time.monotonic()
        if self.users_path and now - self._checked > _RELOAD_S:
            with self._lock:
                self._checked = now
                try:
                    mtime = os.stat(self.users_path).st_mtime
                    if mtime != self._mtime:
                        self._users, self._mtime = load_users(self.users_path), mtime
                except (OSError, E.ValidationError):
                    pass  # keep serving the users we have; add-user writes atomically
        return self._users

    def user(self, metadata: Iterable[tuple[str, Any]] | None) -> User | None | bool:
        """The user the token belongs to; ``True`` for the shared token; ``None``: refused."""
        for key, value in metadata or ():
            if key != "authorization":
                continue
            given = value.encode() if isinstance(value, str) else value
            if self._expected is not None:
                return True if hmac.compare_digest(given, self._expected) else None
            return self._lookup(given)
        return None

    def _lookup(self, given: bytes) -> User | None:
        text = given.decode("utf-8", "replace")
        if not text.startswith("Bearer "):
            return None
        token = text[len("Bearer ") :]
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        user = self._current().get(parts[1])
        if user is None or not hmac.compare_digest(_digest(user.salt, token), user.digest):
            return None
        return user

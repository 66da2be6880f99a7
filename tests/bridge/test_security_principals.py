"""Real principals on a shared server: a token is a user, and nobody can be someone else.

``add-user`` writes a users file of salted hashes; ``serve --users`` makes the
token's user the principal of every request, refuses a differing asserted
principal, lets only admins create sessions and caps how many each owns.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid

import pytest

from dspex_jupyter import Context
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import AccessDenied, SessionNotFound, ValidationError

from .conftest import PYTHON, python_env, wait_until


def add_user(path, name: str, *, admin: bool = False) -> str:
    """Run the real CLI; its only stdout line is the token."""
    argv = [PYTHON, "-m", "dspex_jupyter.bridge", "add-user", str(path), name]
    out = subprocess.run(
        argv + (["--admin"] if admin else []),
        capture_output=True,
        text=True,
        env=python_env(),
        check=True,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].strip()
    assert lines[0] not in out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.json"
    tokens = {
        "teacher": add_user(path, "teacher", admin=True),
        "alice": add_user(path, "alice"),
        "mallory": add_user(path, "mallory"),
    }
    return path, tokens


@pytest.fixture(scope="module")
def shared(users):
    path, _ = users
    proc = ServerProcess(
        "memory",
        private=False,
        listen="127.0.0.1:0",
        extra_args=["--users", str(path), "--max-sessions-per-principal", "3"],
    )
    yield proc
    proc.stop()


@pytest.fixture
def contexts():
    made: list[Context] = []

    def start(**options) -> Context:
        ctx = Context.start(**options)
        made.append(ctx)
        return ctx

    yield start
    for ctx in made:
        ctx.stop()


def _client(server, token, principal=None) -> BridgeClient:
    return BridgeClient(server.address, token, principal=principal)


def test_the_users_file_keeps_only_salted_hashes(users):
    path, tokens = users
    text = path.read_text()
    for token in tokens.values():
        assert token not in text
        assert token.split("_")[-1] not in text
    data = json.loads(text)
    assert set(data["users"]) == {"teacher", "alice", "mallory"}
    assert data["users"]["teacher"]["admin"] is True
    assert data["users"]["alice"]["admin"] is False
    assert len({u["salt"] for u in data["users"].values()}) == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(set(tokens.values())) == 3


def test_an_admin_creates_the_class_session_by_naming_it_and_students_join(shared, users, contexts):
    _, tokens = users
    teacher = contexts(bridge=shared.address, token=tokens["teacher"], session_id="class-1")
    teacher.defvariable("temperature", "float", initial=0.7)
    teacher.grant("alice", ["read", "observe"])
    alice = contexts(bridge=shared.address, token=tokens["alice"], session_id="class-1")
    assert alice.get("temperature") == 0.7
    with pytest.raises(AccessDenied):
        alice.set("temperature", 0.1)
    with pytest.raises(AccessDenied):
        alice.grant("alice", ["write"])
    assert teacher.get("temperature") == 0.7


def test_a_spoofed_principal_is_refused_and_changes_nothing(shared, users, contexts):
    _, tokens = users
    teacher = contexts(bridge=shared.address, token=tokens["teacher"], session_id="class-2")
    teacher.defvariable("answer", "str", initial="42")
    teacher.grant("alice", ["read", "write"])
    # mallory, holding her own token, asserts she is alice, then the teacher
    for who in ("alice", "teacher"):
        with pytest.raises(AccessDenied, match="mallory"):
            contexts(
                bridge=shared.address, token=tokens["mallory"], session_id="class-2", principal=who
            )
    client = _client(shared, tokens["mallory"], principal="teacher")
    try:
        with pytest.raises(AccessDenied):
            BridgedState(client, "class-2", join=True)
    finally:
        client.close()
    # and without a grant, as herself, she cannot even join
    with pytest.raises(AccessDenied):
        contexts(bridge=shared.address, token=tokens["mallory"], session_id="class-2")
    assert teacher.get("answer") == "42"
    assert teacher.permissions("mallory") == {}
    assert teacher.permissions("alice") == {"*": ["read", "write"]}


def test_only_admins_create_sessions(shared, users, contexts):
    _, tokens = users
    with pytest.raises(SessionNotFound, match="admin"):
        contexts(bridge=shared.address, token=tokens["alice"], session_id="squat")
    client = _client(shared, tokens["alice"])
    try:
        with pytest.raises(SessionNotFound):  # a fresh session id without join: same
            BridgedState(client, "squat-2")
    finally:
        client.close()
    teacher = contexts(bridge=shared.address, token=tokens["teacher"], session_id="squat")
    teacher.defvariable("x", "int", initial=1)
    assert teacher.permissions("alice") == {}  # the teacher owns it, not the would-be squatter
    with pytest.raises(AccessDenied):
        contexts(bridge=shared.address, token=tokens["alice"], session_id="squat")


def test_tokens_are_compared_in_constant_time(users, monkeypatch):
    """Every token check, right or wrong, shared token or user's, goes through
    ``hmac.compare_digest`` (never ``==``, whose time leaks the matching prefix)."""
    from dspex_jupyter.bridge.server import users as users_module

    path, tokens = users
    compared: list[tuple[bytes, bytes]] = []
    real = users_module.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(users_module.hmac, "compare_digest", spy)
    by_file = users_module.Authenticator(None, str(path))
    good, bad = tokens["alice"], tokens["alice"][:-1] + ("A" if tokens["alice"][-1] != "A" else "B")
    assert by_file.user([("authorization", f"Bearer {good}")]).name == "alice"
    assert by_file.user([("authorization", f"Bearer {bad}")]) is None
    assert len(compared) == 2
    single = users_module.Authenticator("s3cret")
    assert single.user([("authorization", "Bearer s3cret")]) is True
    assert single.user([("authorization", "Bearer s3creT")]) is None
    assert compared[2:] == [
        (b"Bearer s3cret", b"Bearer s3cret"),
        (b"Bearer s3creT", b"Bearer s3cret"),
    ]


def test_a_wrong_token_or_the_servers_own_token_is_refused(shared, users):
    _, tokens = users
    forged = tokens["alice"][:-4] + ("AAAA" if not tokens["alice"].endswith("AAAA") else "BBBB")
    for token in (forged, shared.token, "dspex_00_x", ""):
        with pytest.raises(AccessDenied):
            client = _client(shared, token)
            try:
                BridgedState(client, "class-1", join=True)
            finally:
                client.close()


def test_sessions_per_principal_are_capped(shared, users, contexts):
    path, _ = users
    token = add_user(path, "ta", admin=True)  # the running server picks the new user up

    def reachable() -> bool:
        try:
            contexts(bridge=shared.address, token=token, session_id="ta-0")
            return True
        except AccessDenied:
            return False

    assert wait_until(reachable)
    for i in (1, 2):
        contexts(bridge=shared.address, token=token, session_id=f"ta-{i}")
    with pytest.raises(ValidationError, match="max-sessions-per-principal"):
        contexts(bridge=shared.address, token=token, session_id="ta-3")


def test_a_token_server_creates_a_named_session_or_joins_it(server, contexts):
    """With one shared token its principal has every right: ``Context.start`` naming a
    missing session creates it (the README's call), and the next one joins it."""
    sid = "named-" + uuid.uuid4().hex
    first = contexts(bridge=server.address, token=server.token, session_id=sid)
    assert first.session_id == sid
    first.defvariable("x", "int", initial=7)
    second = contexts(bridge=server.address, token=server.token, session_id=sid)
    assert second.get("x") == 7
    second.set("x", 8)
    assert wait_until(lambda: first.get("x") == 8)
    with pytest.raises(AccessDenied):  # still the token, whatever the session
        contexts(bridge=server.address, token="not-" + server.token, session_id=sid)


def test_a_private_token_server_still_honours_asserted_principals(server, contexts):
    """One shared token (the kernel's private server) keeps its cooperative principals."""
    alice = contexts(bridge=server.address, token=server.token, principal="alice")
    alice.defvariable("x", "int", initial=1)
    alice.grant("bob", ["read"])
    bob = contexts(
        bridge=server.address, token=server.token, principal="bob", session_id=alice.session_id
    )
    assert bob.get("x") == 1
    with pytest.raises(AccessDenied):
        bob.set("x", 2)

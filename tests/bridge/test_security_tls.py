"""TLS and secrets: ``serve --tls-cert/--tls-key``, clients with ``tls_ca`` or
``DSPEX_BRIDGE_CA``, a warning for plaintext off loopback, and a generated token
that only ever lands in a 0600 file.

The certificates are self-signed, made here by the real ``openssl`` CLI.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import uuid

import pytest

from dspex_jupyter import Context
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.handshake import wait_ready
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import BridgeUnavailable

from .conftest import PYTHON, WAIT_S, python_env


def _self_signed(directory, name: str) -> tuple[str, str]:
    cert, key = str(directory / f"{name}.pem"), str(directory / f"{name}.key")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    return _self_signed(directory, "server"), _self_signed(directory, "other")


@pytest.fixture(scope="module")
def tls_server(certs):
    (cert, key), _ = certs
    proc = ServerProcess(
        "memory",
        listen="127.0.0.1:0",
        private=False,
        extra_args=["--tls-cert", cert, "--tls-key", key],
    )
    yield proc
    proc.stop()


def test_a_client_with_the_ca_reaches_a_tls_server(tls_server, certs, monkeypatch):
    (cert, _), _ = certs
    ctx = Context.start(bridge=tls_server.address, token=tls_server.token, tls_ca=cert)
    try:
        ctx.defvariable("temperature", "float", initial=0.7)
        monkeypatch.setenv("DSPEX_BRIDGE_CA", cert)  # the environment variable does the same
        other = Context.start(
            bridge=tls_server.address, token=tls_server.token, session_id=ctx.session_id
        )
        try:
            assert other.get("temperature") == 0.7
        finally:
            other.stop()
    finally:
        ctx.stop()


def test_plaintext_or_an_untrusted_certificate_cannot_talk_to_a_tls_server(tls_server, certs):
    _, (other_ca, _) = certs
    for tls_ca in (None, other_ca):
        with pytest.raises(BridgeUnavailable):
            client = BridgeClient(
                tls_server.address, tls_server.token, tls_ca=tls_ca, connect_timeout=3
            )
            client.close()


def _serve(*args: str, env=None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [PYTHON, "-m", "dspex_jupyter.bridge", "serve", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or dict(python_env(), DSPEX_BRIDGE_TOKEN="t0ken-for-the-warning-test"),
    )
    try:
        address = wait_ready(proc, WAIT_S, "the bridge server")
    except BaseException:
        proc.kill()
        raise
    return proc, address


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=WAIT_S)
    return out.decode(), err.decode()


def test_plaintext_off_loopback_prints_a_warning_and_tls_or_loopback_do_not(certs):
    (cert, key), _ = certs
    cases = [
        (["--listen", "0.0.0.0:0"], True),
        (["--listen", "0.0.0.0:0", "--tls-cert", cert, "--tls-key", key], False),
        (["--listen", "127.0.0.1:0"], False),
    ]
    for args, warns in cases:
        proc, _ = _serve(*args)
        _, err = _stop(proc)
        assert ("WARNING: serving PLAINTEXT" in err) is warns, (args, err)


def test_a_generated_token_goes_to_a_0600_file_only(tmp_path):
    path = tmp_path / "token"
    proc, address = _serve("--token-file", str(path), env=python_env())
    try:
        token = path.read_text().strip()
        assert len(token) >= 32
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            assert token.encode() not in f.read()
        state = BridgedState(BridgeClient(address, token), uuid.uuid4().hex)
        state.register("x", "int", 1)
        state.close()
    finally:
        out, err = _stop(proc)
    assert token not in out and token not in err
    assert str(path) in err

    # the next start reads the same file: same token
    proc, address = _serve("--token-file", str(path), env=python_env())
    try:
        state = BridgedState(BridgeClient(address, token), uuid.uuid4().hex)
        state.close()
    finally:
        _stop(proc)

    # with no token anywhere: a fresh 0600 file, its path (not the token) on stderr
    proc, _ = _serve(env=python_env())
    out, err = _stop(proc)
    line = next(x for x in err.splitlines() if "generated a token into" in x)
    generated = line.split("generated a token into ", 1)[1].split(" (")[0]
    secret = open(generated).read().strip()
    assert stat.S_IMODE(os.stat(generated).st_mode) == 0o600
    assert secret and secret not in out and secret not in err
    os.unlink(generated)
    os.rmdir(os.path.dirname(generated))


def test_token_on_the_command_line_works_but_warns_without_printing_it():
    secret = "cmdline-" + uuid.uuid4().hex
    proc, address = _serve("--token", secret, env=python_env())
    try:
        state = BridgedState(BridgeClient(address, secret), uuid.uuid4().hex)
        state.register("x", "int", 1)
        assert state.get("x").value == 1
        state.close()
    finally:
        out, err = _stop(proc)
    warning = next(line for line in err.splitlines() if "--token" in line and "WARNING" in line)
    assert "--token-file" in warning and "DSPEX_BRIDGE_TOKEN" in warning and "ps" in warning
    assert secret not in out and secret not in err
    # the same token from the environment: no warning
    proc, _ = _serve(env=dict(python_env(), DSPEX_BRIDGE_TOKEN=secret))
    _, err = _stop(proc)
    assert "WARNING" not in err and secret not in err

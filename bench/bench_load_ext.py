"""How long ``%load_ext dspex_jupyter`` takes in a fresh kernel-like process.

Each sample is a fresh interpreter that first creates an IPython shell (a
kernel already has one), then times one thing with ``perf_counter``:

* ``load_ext``: ``%load_ext dspex_jupyter`` (imports the package, registers
  the magics; must not import DSPy);
* ``reference``: ``import ipywidgets, traitlets`` in the same kind of process,
  measured in the same run, so the ratio is meaningful on a noisy machine.

It also reports the wall time of whole subprocesses (``python -c "import
ipywidgets, traitlets"`` versus a shell plus ``%load_ext``). Goal: load_ext
median under 300 ms. Prints medians, p99 and ratios; exits 1 if the goal is
missed or DSPy was imported.

    .venv/bin/python bench/bench_load_ext.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

GOAL_MS = 300.0

_TIMED = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
start = time.perf_counter()
{body}
elapsed = (time.perf_counter() - start) * 1000
print(json.dumps({{"ms": elapsed, "dspy": "dspy" in sys.modules}}))
"""
LOAD_EXT = 'assert shell.run_cell("%load_ext dspex_jupyter").success'
REFERENCE = "import ipywidgets, traitlets"


def _timed(body: str) -> tuple[float, bool]:
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=body)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["ms"], data["dspy"]


def _wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    load, ref, wall_load, wall_ref = [], [], [], []
    dspy_seen = False
    for _ in range(runs):  # interleaved, so both see the same machine load
        ms, dspy = _timed(LOAD_EXT)
        load.append(ms)
        dspy_seen |= dspy
        ref.append(_timed(REFERENCE)[0])
        wall_load.append(
            _wall(
                [
                    "-c",
                    "from IPython.core.interactiveshell import InteractiveShell as S;"
                    "S.instance().run_line_magic('load_ext', 'dspex_jupyter')",
                ]
            )
        )
        wall_ref.append(_wall(["-c", REFERENCE]))
    rows = [
        ("%load_ext dspex_jupyter (in process)", load),
        ("import ipywidgets, traitlets (in process)", ref),
        ("python: IPython shell + %load_ext (wall)", wall_load),
        ('python -c "import ipywidgets, traitlets" (wall)', wall_ref),
    ]
    print(f"{'measure':50} {'median ms':>10} {'p99 ms':>10}   ({runs} fresh processes each)")
    for label, samples in rows:
        print(f"{label:50} {statistics.median(samples):10.1f} {_p99(samples):10.1f}")
    ratio = statistics.median(load) / statistics.median(ref)
    print(f"ratio load_ext / reference import (medians): {ratio:.2f}")
    print(f"dspy imported by %load_ext: {dspy_seen}")
    ok = statistics.median(load) < GOAL_MS and not dspy_seen
    print(f"goal (median < {GOAL_MS:.0f} ms, no dspy): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

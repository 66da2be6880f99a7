"""Shared timing helpers: interleaved batches, medians, p99 and ratios.

Benchmarks compare a dspex operation with a reference measured in the same
run, interleaving their batches so that a noisy neighbour slows both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def per_op_ns(op: Callable[[], object], batch: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(batch):
        op()
    return (time.perf_counter_ns() - start) / batch


def compare(
    cases: dict[str, Callable[[], object]], *, batch: int = 2000, rounds: int = 200
) -> dict[str, list[float]]:
    """Per-op times (ns) of each case, one batch of each per round."""
    for op in cases.values():  # warm up
        per_op_ns(op, batch)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, op in cases.items():
            samples[name].append(per_op_ns(op, batch))
    return samples


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(title: str, samples: dict[str, list[float]], unit: str = "ns") -> None:
    print(f"\n{title}")
    for name, values in samples.items():
        print(
            f"  {name:<44} median {statistics.median(values):10.1f} {unit}   p99 {p99(values):10.1f} {unit}"
        )


def ratio(samples: dict[str, list[float]], ours: str, reference: str, goal: float) -> float:
    value = statistics.median(samples[ours]) / statistics.median(samples[reference])
    verdict = "meets" if value <= goal else "MISSES"
    print(f"  ratio {ours} / {reference}: {value:.2f}x (goal <= {goal}x: {verdict})")
    return value

"""Program.evaluate vs dspy.Evaluate, and the Tuner's overhead per trial vs bare Optuna.

1. 200 examples, ``ChainOfThought("question -> answer")``, the test LM in its
   own process with 100 ms per answer, 16 examples in flight:
   ``Program.evaluate`` on a bridged context (kernel threads issuing
   ``ExecuteModule`` to the bridge's worker pool) against ``dspy.Evaluate(
   num_threads=16)`` run directly in this process on the same LM, and against
   the ideal LM-bound time (200 x 0.1 s / 16 = 1.25 s).
   Goal (issue 11): <= 1.3x ideal and <= 1.1x dspy.Evaluate.
2. A native program on a local context, 4 examples per trial, 40 trials per
   round, random sampler: ``Tuner.run`` per trial against a bare
   ``optuna.create_study().optimize`` whose objective runs the same
   evaluation with the same overrides. Goal: <= 5 ms per trial more.

Rounds are interleaved so a noisy neighbour slows both cases alike; medians
and p99 over rounds are printed. For the evaluation, the CPU time per example
of each process (this kernel, the bridge server, its workers, the LM server) is
printed too: on a machine with few cores the bridged path is CPU-bound, and
this says which hop costs what (Linux only; read from ``/proc``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from _timing import p99  # noqa: E402
from bench_program import _LMProcess  # noqa: E402

N = 200
THREADS = 16
LATENCY = 0.1
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
TRIALS = 40


def _line(name: str, values: list[float], unit: str = "ms", scale: float = 1000) -> None:
    print(
        f"  {name:<22} median {statistics.median(values) * scale:8.1f} {unit}"
        f"   p99 {p99(values) * scale:8.1f} {unit}"
    )


def _processes() -> dict[int, str]:
    """This process and its descendants: ``{pid: short command}`` (empty without /proc)."""
    if not Path("/proc/self/stat").exists():
        return {}
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found[pid] = (
            "kernel" if pid == os.getpid()
            else "bridge server" if " serve " in cmd
            else "worker" if "worker_main" in cmd
            else "LM server" if "lm_server" in cmd
            else cmd[:40]
        )  # fmt: skip
        todo += [child for child, parent in parents.items() if parent == pid]
    return found


def _cpu_s(pids: dict[int, str]) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _verdict(value: float, goal: float) -> str:
    return "meets" if value <= goal else "MISSES"


def bench_evaluate() -> None:
    import dspy

    from dspex_jupyter import Context, Program
    from dspex_jupyter.modules import ChainOfThought

    questions = [f"question {i}" for i in range(N)]
    rows = [{"question": q, "answer": f"Test answer for: {q}"} for q in questions]
    with _LMProcess(LATENCY) as lm:
        ctx = Context.start(lm={"model": "test-lm", "api_base": lm.url, "api_key": "bench"})
        spec = Program.new("bench").chain([ChainOfThought("question -> answer")])
        cot = dspy.ChainOfThought("question -> answer")
        devset = [dspy.Example(**r).with_inputs("question") for r in rows]
        reference = dspy.Evaluate(
            devset=devset,
            metric=lambda example, pred, trace=None: example.answer == pred.answer,
            num_threads=THREADS,
            display_progress=False,
        )
        kernel_lm = dspy.LM("openai/test-lm", api_base=lm.url, api_key="bench", cache=False)

        def ours() -> float:
            start = time.perf_counter()
            ev = Program.evaluate(
                spec, rows, "exact_match", context=ctx, num_threads=THREADS, display_progress=False
            )
            elapsed = time.perf_counter() - start
            assert ev.score == 1.0, ev
            return elapsed

        def theirs() -> float:
            start = time.perf_counter()
            with dspy.context(lm=kernel_lm):
                result = reference(cot)
            elapsed = time.perf_counter() - start
            assert result.score == 100.0, result.score
            return elapsed

        try:
            ours(), theirs()  # warm up: bridge, workers, connections
            samples: dict[str, list[float]] = {"Program.evaluate": [], "dspy.Evaluate": []}
            procs = _processes()
            cpu: dict[str, dict[int, float]] = {"Program.evaluate": {}, "dspy.Evaluate": {}}
            for _ in range(ROUNDS):
                for name, case in (("Program.evaluate", ours), ("dspy.Evaluate", theirs)):
                    before = _cpu_s(procs)
                    samples[name].append(case())
                    for pid, seconds in _cpu_s(procs).items():
                        spent = seconds - before.get(pid, seconds)
                        cpu[name][pid] = cpu[name].get(pid, 0.0) + spent
        finally:
            ctx.stop()
    ideal = N * LATENCY / THREADS
    print(
        f"\n{N} examples, ChainOfThought, LM latency {LATENCY * 1000:.0f} ms, {THREADS} in flight, "
        f"{ROUNDS} rounds (ideal {ideal:.2f} s)"
    )
    for name, values in samples.items():
        _line(name, values)
    for name, spent in cpu.items():
        per_role: dict[str, float] = {}
        for pid, seconds in spent.items():
            per_role[procs[pid]] = per_role.get(procs[pid], 0.0) + seconds
        parts = ", ".join(
            f"{role} {seconds * 1000 / (N * ROUNDS):.2f}"
            for role, seconds in sorted(per_role.items())
            if seconds > 0
        )
        print(f"  CPU ms/example, {name}: {parts}")
    mine, ref = (statistics.median(v) for v in samples.values())
    print(
        f"  ratio Program.evaluate / ideal: {mine / ideal:.2f}x (goal <= 1.3x: "
        f"{_verdict(mine / ideal, 1.3)})"
    )
    print(
        f"  ratio Program.evaluate / dspy.Evaluate: {mine / ref:.2f}x (goal <= 1.1x: "
        f"{_verdict(mine / ref, 1.1)})"
    )


def _scorer(country: str, temperature: float) -> dict[str, str]:
    return {"capital": "Paris" if temperature <= 0.3 else "unsure"}


def bench_tuner() -> None:
    import optuna

    from dspex_jupyter import Context, Program, Tuner
    from dspex_jupyter.native import function
    from dspex_jupyter.tuning.evaluate import prepare_evaluation

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = (
        Program.new("bench-tune")
        .defvariable("temperature", "float", initial=0.7, constraints={"min": 0.0, "max": 1.0})
        .chain([function(_scorer, outputs=["capital"]).bind_to_variable("temperature")])
    )
    devset = [{"country": f"c{i}", "capital": "Paris"} for i in range(4)]
    ctx = Context.start()

    def tuner() -> float:
        start = time.perf_counter()
        Tuner(
            spec,
            devset,
            "exact_match",
            context=ctx,
            sampler="random",
            n_trials=TRIALS,
            seed=0,
            display_progress=False,
        ).run()
        return (time.perf_counter() - start) / TRIALS

    def bare() -> float:
        start = time.perf_counter()
        prepared = prepare_evaluation(spec, devset, "exact_match", ctx)

        def objective(trial: optuna.Trial) -> float:
            value = trial.suggest_float("temperature", 0.0, 1.0)
            return prepared.run({"temperature": value}, display_progress=False).score

        study = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize"
        )
        study.optimize(objective, n_trials=TRIALS)
        return (time.perf_counter() - start) / TRIALS

    tuner(), bare()
    samples: dict[str, list[float]] = {"Tuner.run": [], "bare optuna": []}
    for _ in range(ROUNDS * 2):
        samples["Tuner.run"].append(tuner())
        samples["bare optuna"].append(bare())
    ctx.stop()
    print(
        f"\nTuner per trial ({TRIALS} trials x {len(devset)} native examples, {ROUNDS * 2} rounds)"
    )
    for name, values in samples.items():
        _line(name, values)
    extra = statistics.median(samples["Tuner.run"]) - statistics.median(samples["bare optuna"])
    print(
        f"  Tuner overhead per trial: {extra * 1000:.2f} ms (goal <= 5 ms: "
        f"{_verdict(extra, 0.005)})"
    )


if __name__ == "__main__":
    bench_tuner()
    bench_evaluate()

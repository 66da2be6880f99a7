"""The embedded LM (SmolLM2-135M on llama.cpp): load time, tokens/s, examples/s, accuracy.

Everything goes through a real bridge server (in this process, so its RSS is
this process's) and its worker processes, as a notebook's runs would. The
machine is shared and noisy: read the absolute times as orders of magnitude;
the ratio of tokens/s with 4 vs 1 request in flight is measured in the same
run. Accuracy: 4-topic classification of 8 short texts, Predict, two runs
at temperature 0.0 and two at 1.0 (mean and spread).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for name in ("DSPEX_LM_MODEL", "DSPEX_LM_API_BASE", "DSPEX_LM_API_KEY"):
    os.environ.pop(name, None)

from dspex_jupyter import Context, Program  # noqa: E402
from dspex_jupyter.bridge.local_lm import LocalLMHost  # noqa: E402
from dspex_jupyter.bridge.server import BridgeServer  # noqa: E402
from dspex_jupyter.bridge.store import open_store  # noqa: E402
from dspex_jupyter.modules import ChainOfThought, Predict  # noqa: E402

SIGNATURE = "text -> topic: Literal['sports', 'politics', 'food', 'technology']"
TOPICS = [
    ("The striker scored twice in the cup final.", "sports"),
    ("Our team won the basketball championship last night.", "sports"),
    ("Parliament passed the new budget bill today.", "politics"),
    ("The senator announced her campaign for governor.", "politics"),
    ("This pasta recipe uses fresh basil and garlic.", "food"),
    ("Bake the bread for forty minutes until golden.", "food"),
    ("The new smartphone chip runs apps twice as fast.", "technology"),
    ("The software update fixes a security bug in the browser.", "technology"),
]


def load_times(n: int = 3) -> list[float]:
    times = []
    for _ in range(n):
        host = LocalLMHost()
        host.ensure()
        times.append(host.load_s or 0.0)
        host.stop()
    return times


def tokens_per_s(host: LocalLMHost, in_flight: int, requests: int = 8) -> float:
    body = {
        "messages": [{"role": "user", "content": "Write a short paragraph about the sea."}],
        "temperature": 0.0,
        "max_tokens": 64,
    }

    def one(_: int) -> int:
        request = urllib.request.Request(
            host.url + "/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {host.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=300) as response:
            return json.loads(response.read())["usage"]["completion_tokens"]

    start = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        tokens = sum(pool.map(one, range(requests)))
    return tokens / (time.perf_counter() - start)


def accuracy(ctx: Context, module, temperature: float) -> tuple[float, float]:
    """(accuracy, seconds per example) with 4 runs in flight."""
    spec = Program.new().chain([module(SIGNATURE)])
    ctx.lm_config["temperature"] = temperature
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda ex: Program.run(spec, {"text": ex[0]}, context=ctx), TOPICS))
    took = (time.perf_counter() - start) / len(TOPICS)
    right = sum(r.outputs["topic"] == gold for r, (_, gold) in zip(runs, TOPICS, strict=True))
    return right / len(TOPICS), took


def main() -> None:
    loads = load_times()
    print(f"model load: median {statistics.median(loads):.2f} s (of {len(loads)})")
    token = secrets.token_urlsafe(16)
    server = BridgeServer("127.0.0.1:0", token, open_store("memory", 1000), workers=1).start()
    ctx = Context.start(bridge=server.address, token=token)
    try:
        accuracy(ctx, Predict, 0.0)  # warm: workers, DSPy, the model
        host = server.servicer._pool.local_lm
        one, four = tokens_per_s(host, 1), tokens_per_s(host, 4)
        print(f"tokens/s: 1 in flight {one:.0f}, 4 in flight {four:.0f} ({four / one:.2f}x)")
        for module in (Predict, ChainOfThought):
            _, took = accuracy(ctx, module, 0.0)
            print(
                f"{module.__name__}: {took:.2f} s/example ({1 / took:.2f} examples/s), 4 in flight"
            )
        for temperature in (0.0, 1.0):
            scores = [accuracy(ctx, Predict, temperature)[0] for _ in range(2)]
            print(
                f"accuracy at temperature {temperature}: mean {statistics.mean(scores):.2f}, "
                f"spread {max(scores) - min(scores):.2f} (runs {scores}, {len(TOPICS)} texts)"
            )
    finally:
        ctx.stop()
        server.stop(grace=0.5)
    print(
        f"peak RSS of the server process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()

"""Benchmark of the bridged backend against references measured in the same run.

1. cached ``get`` on BridgedState vs ``get`` on LocalState (goal: <= 2x);
2. ``set`` on BridgedState vs a raw grpcio unary echo on the same transport
   (a Unix socket to a server process of the same kind; goal: <= 1.3x);
3. cross-process watch latency: another process sets, this one's watcher
   receives (goal: p50 <= 2 ms).

Prints medians, p99 and ratios. Run: ``.venv/bin/python bench/bench_bridge.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent import futures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import grpc  # noqa: E402

from dspex_jupyter.bridge.client import BridgeClient  # noqa: E402
from dspex_jupyter.bridge.handshake import announce, wait_ready  # noqa: E402
from dspex_jupyter.bridge.server import SERVER_OPTIONS  # noqa: E402
from dspex_jupyter.bridge.state import BridgedState  # noqa: E402
from dspex_jupyter.bridge.testing import ServerProcess  # noqa: E402
from dspex_jupyter.state.local import LocalState  # noqa: E402

ECHO_METHOD = "/bench.Echo/Echo"


def _verdict(value: float, goal: float) -> str:
    return "meets" if value <= goal else "MISSES"


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def report(name: str, samples_s: list[float], unit: str = "us") -> float:
    scale = 1e6 if unit == "us" else 1e3
    med = statistics.median(samples_s)
    print(
        f"  {name:<38} median {med * scale:9.2f} {unit}   p99 {p(samples_s, 0.99) * scale:9.2f} {unit}"
        f"   (n={len(samples_s)})"
    )
    return med


# ---------------------------------------------------------------- the echo reference


def run_echo_server(address: str) -> None:
    """A raw grpcio echo: same server kind (sync, thread pool, same options), no logic."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(address)
    server.start()
    announce(address)
    sys.stdin.read()  # exit with the benchmark
    server.stop(0)


def start_echo() -> tuple[subprocess.Popen, str]:
    directory = tempfile.mkdtemp(prefix="dspex-bench-echo-")
    address = f"unix:{os.path.join(directory, 'echo.sock')}"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--echo-server", address],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    wait_ready(proc, 60.0, "the echo server")
    return proc, address


# ---------------------------------------------------------------- the watch setter


def run_setter(address: str, token: str, session_id: str, count: int, gap_s: float) -> None:
    state = BridgedState(BridgeClient(address, token), session_id, join=True)
    time.sleep(0.2)
    for _ in range(count):
        state.set("stamp", time.time())
        time.sleep(gap_s)
    state.close()


# ---------------------------------------------------------------- measurements


def bench_get(bridged: BridgedState, local: LocalState, batches: int, per_batch: int) -> None:
    print(f"\n[get] {batches} batches x {per_batch} calls, per-call time per batch")
    for state in (bridged, local):
        state.register("temperature", "float", 0.7)
    assert bridged.live
    samples: dict[str, list[float]] = {"local": [], "bridged": []}
    for _ in range(batches):  # interleaved, so machine noise hits both alike
        for name, state in (("local", local), ("bridged", bridged)):
            get = state.get
            t0 = time.perf_counter()
            for _ in range(per_batch):
                get("temperature")
            samples[name].append((time.perf_counter() - t0) / per_batch)
    ref = report("LocalState.get (reference)", samples["local"], "us")
    med = report("BridgedState.get (cached)", samples["bridged"], "us")
    print(
        f"  ratio cached bridged / local       {med / ref:6.2f}x   (goal <= 2x: {_verdict(med / ref, 2)})"
    )


def bench_set(bridged: BridgedState, echo_address: str, rounds: int) -> float:
    print(f"\n[set] {rounds} calls each, interleaved; echo payload = the set request's size")
    channel = grpc.insecure_channel(echo_address)
    echo = channel.unary_unary(
        ECHO_METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb

    payload = pb.SetVariableRequest(
        session_id=bridged.session_id, name="temperature", value_json="0.123456789"
    ).SerializeToString()
    bridged.register("other", "float", 0.5)
    for _ in range(200):  # warm up both paths
        echo(payload, timeout=30)
        bridged.set("temperature", 0.5)
    # the same SetVariable RPC without BridgedState (no cache, no watch stream): it
    # splits the gap to the echo into server work and the coherent cache's cost
    raw_set = bridged.client.stub.SetVariable
    raw_md = bridged.client.metadata
    other = pb.SetVariableRequest(session_id=bridged.session_id, name="other", value_json="0.5")
    sets, echos, raws = [], [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        echo(payload, timeout=30)
        t1 = time.perf_counter()
        bridged.set("temperature", (i % 100) / 100)
        t2 = time.perf_counter()
        raw_set(other, metadata=raw_md, timeout=30)
        t3 = time.perf_counter()
        echos.append(t1 - t0)
        sets.append(t2 - t1)
        raws.append(t3 - t2)
    ref = report("raw grpcio unary echo (reference)", echos, "us")
    report("raw SetVariable RPC (no client cache)", raws, "us")
    med = report("BridgedState.set", sets, "us")
    print(
        f"  ratio set / echo                   {med / ref:6.2f}x   (goal <= 1.3x: {_verdict(med / ref, 1.3)})"
    )
    print(f"  ratio p99 set / echo               {p(sets, 0.99) / p(echos, 0.99):6.2f}x")
    channel.close()
    return ref


def bench_watch(server: ServerProcess, count: int, gap_s: float, echo_ref: float) -> None:
    print(f"\n[watch] another process sets {count} times; this process's watcher receives")
    sid = uuid.uuid4().hex
    state = BridgedState(BridgeClient(server.address, server.token), sid)
    state.register("stamp", "float", 0.0)
    latencies: list[float] = []
    done = threading.Event()

    def on_change(event) -> None:
        latencies.append(time.time() - event.new_value)
        if len(latencies) >= count:
            done.set()

    state.watch(["stamp"], on_change)
    setter = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--setter",
            json.dumps([server.address, server.token, sid, count, gap_s]),
        ]
    )
    done.wait(300)
    setter.wait(60)
    state.close()
    med = report("set in process B -> callback in A", latencies, "ms")
    print(f"  watch p50 {med * 1e3:.3f} ms (goal <= 2 ms: {_verdict(med * 1e3, 2)})")
    print(f"  ratio watch p50 / echo median      {med / echo_ref:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--echo-server")
    parser.add_argument("--setter", help="JSON [address, token, session, count, gap_s]")
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke test)")
    args = parser.parse_args()
    if args.echo_server:
        return run_echo_server(args.echo_server)
    if args.setter:
        a, t, s, n, g = json.loads(args.setter)
        return run_setter(a, t, s, int(n), float(g))
    scale = 10 if args.quick else 1
    print("dspex bridge benchmark (memory store, Unix socket; server in its own process)")
    server = ServerProcess("memory", token=secrets.token_urlsafe(16))
    echo_proc, echo_address = start_echo()
    try:
        bridged = BridgedState(BridgeClient(server.address, server.token), uuid.uuid4().hex)
        local = LocalState()
        bench_get(bridged, local, batches=300 // scale, per_batch=2000)
        echo_ref = bench_set(bridged, echo_address, rounds=5000 // scale)
        bridged.close()
        bench_watch(server, count=1000 // scale, gap_s=0.003, echo_ref=echo_ref)
    finally:
        echo_proc.stdin.close()
        echo_proc.wait(30)
        server.stop()


if __name__ == "__main__":
    main()

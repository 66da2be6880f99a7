"""Cold and warm upgrade times: LocalState -> BridgedState with 20 variables.

Cold: a fresh process whose first upgrade spawns its private bridge server.
Warm: later contexts in a process whose private server is already running.
Reference, measured in the same run: an insecure grpcio channel's first call
to a server's health check (what any gRPC client pays to connect).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import p99  # noqa: E402

ONE_UPGRADE = r"""
import json, time
from dspex_jupyter import Context, Variables
ctx = Context.start()
for i in range(20):
    Variables.defvariable(ctx, f"v{i}", "float", initial=i / 10)
start = time.perf_counter()
ctx.ensure_bridged()
cold = time.perf_counter() - start
warm = []
for _ in range(15):
    other = Context.start()
    for i in range(20):
        Variables.defvariable(other, f"v{i}", "float", initial=i / 10)
    start = time.perf_counter()
    other.ensure_bridged()
    warm.append(time.perf_counter() - start)
    other.stop()
ctx.stop()
print(json.dumps({"cold": cold, "warm": warm}))
"""

HEALTH_CONNECT = r"""
import json, sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
address = sys.argv[1]
samples = []
for _ in range(15):
    start = time.perf_counter()
    channel = grpc.insecure_channel(address)
    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    samples.append(time.perf_counter() - start)
    channel.close()
print(json.dumps(samples))
"""


def main() -> None:
    cold, warm = [], []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", ONE_UPGRADE], check=True, capture_output=True, text=True
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        cold.append(data["cold"] * 1000)
        warm.extend(t * 1000 for t in data["warm"])

    from dspex_jupyter.bridge.launcher import PrivateServer  # noqa: PLC0415

    server = PrivateServer("memory")
    try:
        out = subprocess.run(
            [sys.executable, "-c", HEALTH_CONNECT, server.address],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        connect = [t * 1000 for t in json.loads(out.strip().splitlines()[-1])]
    finally:
        server.stop()

    print("\nupgrade LocalState -> BridgedState, 20 variables")
    for name, values in (
        ("cold (spawns the private server)", cold),
        ("warm (server already running)", warm),
        ("reference: grpc connect + health check", connect),
    ):
        print(
            f"  {name:<42} median {statistics.median(values):8.1f} ms   p99 {p99(values):8.1f} ms"
        )
    print(f"  ratio warm / connect: {statistics.median(warm) / statistics.median(connect):.2f}x")


if __name__ == "__main__":
    main()

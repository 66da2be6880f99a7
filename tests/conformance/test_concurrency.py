"""Concurrency properties, for every backend: nothing lost, versions gapless, watchers exact."""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dspex_jupyter.errors import VersionConflict

from .helpers import Collector

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _run_threads(count: int, target) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as exc:  # surface failures from worker threads
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@SETTINGS
@given(threads=st.integers(1, 6), writes=st.integers(1, 25))
def test_concurrent_sets_are_gapless_and_watched_exactly_once(make_provider, threads, writes):
    provider = make_provider()
    provider.register("x", "int", 0)
    watchers = [Collector(), Collector()]
    for watcher in watchers:
        provider.watch(["x"], watcher)
    returned: list[list[int]] = [[] for _ in range(threads)]

    def writer(index: int) -> None:
        for step in range(writes):
            returned[index].append(provider.set("x", index * 1000 + step).version)

    _run_threads(threads, writer)
    total = threads * writes
    for versions in returned:
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert sorted(v for vs in returned for v in vs) == list(range(2, 2 + total))
    assert provider.get("x").version == 1 + total
    for watcher in watchers:
        events = watcher.wait_for(total)
        assert [e.version for e in events] == list(range(2, 2 + total))
        # each event's old value is the previous event's new value: nothing skipped
        assert all(a.new_value == b.old_value for a, b in zip(events, events[1:], strict=False))


@SETTINGS
@given(threads=st.integers(2, 5), increments=st.integers(1, 15))
def test_compare_and_set_increments_lose_nothing(make_provider, threads, increments):
    provider = make_provider()
    provider.register("counter", "int", 0)

    def incrementer(_: int) -> None:
        for _ in range(increments):
            while True:
                current = provider.get("counter")
                try:
                    provider.set("counter", current.value + 1, expected_version=current.version)
                    break
                except VersionConflict:
                    continue

    _run_threads(threads, incrementer)
    final = provider.get("counter")
    assert final.value == threads * increments
    assert final.version == 1 + threads * increments


def test_concurrent_batches_are_atomic(make_provider):
    provider = make_provider()
    provider.register("a", "int", 0)
    provider.register("b", "int", 0)
    seen_torn: list[tuple[int, int]] = []
    done = threading.Event()

    def writer(index: int) -> None:
        if index == 0:
            for step in range(1, 200):
                provider.update_many({"a": step, "b": -step})
            done.set()
        else:
            while not done.is_set():
                many = provider.get_many(["a", "b"])
                if many["a"].value != -many["b"].value:
                    seen_torn.append((many["a"].value, many["b"].value))

    _run_threads(2, writer)
    assert seen_torn == []
    assert provider.get("a").version == provider.get("b").version == 200

"""The worker pool: a worker that dies costs only the item that killed it."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from sat_mir.run.pool import DIED, Crashed, run_pool


def _square_or_die(n: int) -> int:
    # item 3 kills its own process, the way the kernel's OOM killer or a segfault would
    if n == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return n * n


def _pid(_: int) -> int:
    return os.getpid()


def test_dead_worker_costs_only_its_item(caplog):
    with caplog.at_level(logging.WARNING, logger="sat_mir.run"):
        results = dict(run_pool(_square_or_die, list(range(8)), jobs=2))
    assert sorted(results) == list(range(8))
    assert results[3] == Crashed(3) and results[3].reason == DIED
    assert {n: r for n, r in results.items() if n != 3} == {n: n * n for n in range(8) if n != 3}
    assert "worker process died" in caplog.text


def test_two_bad_items_both_named():
    results = dict(run_pool(_square_or_die, [3, 1, 3, 2], jobs=2))
    assert isinstance(results[3], Crashed) and results[1] == 1 and results[2] == 4
    assert sum(isinstance(r, Crashed) for _, r in run_pool(_square_or_die, [3, 1, 3, 2], jobs=2)) == 2


def test_jobs_one_runs_in_this_process():
    assert {r for _, r in run_pool(_pid, [1, 2, 3], jobs=1)} == {os.getpid()}
    assert list(run_pool(_pid, [], jobs=4)) == []


def test_workers_are_other_processes():
    pids = {r for _, r in run_pool(_pid, list(range(6)), jobs=2)}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_exceptions_are_not_crashes(jobs):
    with pytest.raises(ZeroDivisionError):
        list(run_pool(_reciprocal, [1, 0], jobs=jobs))


def _reciprocal(n: int) -> float:
    return 1 / n

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
    assert results[3] == Crashed() and results[3].reason == DIED
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


# --------------------------------------------------------------------------- in the extraction runner

from sat_mir.features.registry import Extractor, ExtractorResult, OutputSpec  # noqa: E402


class _KillsOneTrack(Extractor):
    """Peak of the mix, except that one track's worker dies (the way a segfault in a decoder would)."""

    name = "kills_one"
    version = "1"
    outputs = (OutputSpec("test_peak", "FS", "sample peak", (0.0, 2.0)),)
    victim = ""

    def compute(self, ctx) -> ExtractorResult:
        if ctx.track_id == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return ExtractorResult(values={"test_peak": float(abs(ctx.mix.samples).max())})


def test_runner_records_the_dead_worker_on_its_track_only(demo_library, tmp_path, caplog):
    from sat_mir.catalog import scan_library
    from sat_mir.run import run_extraction
    from conftest import sidecars

    tracks = scan_library(demo_library)
    assert len(tracks) >= 3
    killer = _KillsOneTrack()
    killer.victim = tracks[1].id  # an instance attribute, so it travels to the spawned workers
    with caplog.at_level(logging.ERROR, logger="sat_mir.run"):
        summary = run_extraction(tracks, [killer], root=demo_library, output=tmp_path, jobs=2, progress=False)
    assert summary.failed == 1 and summary.done == len(tracks) - 1 and summary.exit_code == 1
    cars = sidecars(tmp_path)
    for t in tracks:
        car = cars[t.name]
        rec = car["provenance"]["kills_one"]
        if t.id == killer.victim:
            assert DIED in rec["error"] and "test_peak" not in car["features"]
        else:
            assert rec["error"] is None and 0.0 < car["features"]["test_peak"] <= 1.0
    assert f"FAILED {tracks[1].rel}" in caplog.text and caplog.text.count("FAILED") == 1
    # the next run retries that track only
    again = run_extraction(tracks, [_KillsOneTrack()], root=demo_library, output=tmp_path, jobs=2, progress=False)
    assert (again.done, again.skipped, again.failed) == (1, len(tracks) - 1, 0)


def test_a_track_done_twice_in_one_run_counts_as_done(demo_library, tmp_path):
    # A dead worker can take with it the result of a track the other worker had finished; the
    # pool runs that track again, and its records, written by this very run, are work done in
    # it, not "already current" (the same work in a later run is skipped).
    from sat_mir.catalog import scan_library
    from sat_mir.run.worker import TrackTask, process_track

    track = scan_library(demo_library)[0]
    task = TrackTask(track, demo_library, tmp_path, (_KillsOneTrack(),), run_id="run-a")
    first = process_track(task)
    assert (first.done, first.skipped) == (["kills_one"], [])
    again = process_track(task)
    assert (again.done, again.skipped) == (["kills_one"], [])
    later = process_track(TrackTask(track, demo_library, tmp_path, (_KillsOneTrack(),), run_id="run-b"))
    assert (later.done, later.skipped) == ([], ["kills_one"])

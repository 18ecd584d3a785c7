"""The model stage's handling of a Ray actor that dies (sat_mir.run.executor._on_actors), on a
stand-in for Ray whose restarts take as long as a test says: Ray runs an actor's calls at most
once, so a call made while the actor is restarting fails at once (ActorUnavailableError), and a
loaded cluster restarts slowly (a CI run lost a second batch that way)."""

from __future__ import annotations

import itertools

from sat_mir.run import executor
from sat_mir.run.executor import ExecutorSettings, execute_batches
from sat_mir.run.pool import Crashed


class FakeRay:
    """Actors that run ``fn`` on a batch, die on a batch holding ``"die"``, and stay unreachable
    for the next ``restart_calls`` calls made to them (each call fails at once, as Ray's do)."""

    class exceptions:  # noqa: N801 (the layout of ray.exceptions)
        class RayError(Exception):
            pass

        class ActorUnavailableError(RayError):
            pass

    def __init__(self, restart_calls: int):
        self.restart_calls = restart_calls
        self.results: dict[int, tuple[bool, object]] = {}  # call -> (ok, value or exception)
        self.ids = itertools.count()
        self.killed = 0
        self.asked = 0

    def remote(self, **_options):
        ray = self

        def wrap(cls):
            class Handle:
                def __init__(self, fn):
                    self.body, self.down = cls(fn), 0
                    self.run = Method(self, "run")
                    self.ready = Method(self, "ready")

            class Method:
                def __init__(self, handle, name):
                    self.handle, self.name = handle, name

                def remote(self, *args):
                    h, ref = self.handle, next(ray.ids)
                    ray.asked += self.name == "ready"
                    if h.down:
                        h.down -= 1
                        ray.results[ref] = (False, FakeRay.exceptions.ActorUnavailableError("restarting"))
                    elif self.name == "run" and "die" in args[0]:
                        h.down = ray.restart_calls
                        ray.results[ref] = (False, FakeRay.exceptions.ActorUnavailableError("died"))
                    else:
                        ray.results[ref] = (True, getattr(h.body, self.name)(*args))
                    return ref

            return type("Actor", (), {"remote": staticmethod(lambda fn: Handle(fn))})

        return wrap

    def wait(self, refs, num_returns=1, timeout=None):
        return [refs[0]], refs[1:]

    def get(self, ref):
        ok, value = self.results.pop(ref)
        if not ok:
            raise value
        return value

    def kill(self, _actor):
        self.killed += 1


def run(monkeypatch, ray: FakeRay, batches: list[str]) -> dict[str, object]:
    monkeypatch.setattr(executor, "connect", lambda settings: ray)
    monkeypatch.setattr(executor, "actor_room", lambda ray, settings: 1)
    monkeypatch.setattr(executor, "PROBE_PAUSE_S", 0.001)
    settings = ExecutorSettings(kind="ray", model_actors=1)
    return dict(execute_batches(lambda batch: batch.upper(), batches, settings))


def test_a_dead_actor_fails_only_its_batch_however_slow_its_restart(monkeypatch):
    for restart_calls in (0, 1, 5):  # Ray back at once, after one refused call, after five
        ray = FakeRay(restart_calls)
        out = run(monkeypatch, ray, ["a", "die", "b", "c"])
        assert out["a"] == "A" and out["b"] == "B" and out["c"] == "C", (restart_calls, out)
        assert isinstance(out["die"], Crashed) and "actor died" in out["die"].reason
        assert ray.asked == restart_calls + 1  # asked until it answered, then given "b"
        assert ray.killed == 1


def test_an_actor_that_never_comes_back_leaves_its_batches_named(monkeypatch):
    monkeypatch.setattr(executor, "MAX_PROBES", 3)
    ray = FakeRay(restart_calls=1000)
    out = run(monkeypatch, ray, ["die", "b", "c"])
    assert isinstance(out["die"], Crashed)
    assert isinstance(out["b"], Crashed) and isinstance(out["c"], Crashed)
    assert "no Ray model actor came back" in out["b"].reason
    assert ray.asked == 3

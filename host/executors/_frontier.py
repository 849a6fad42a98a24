"""Which assets of a plan can start now: the frontier of a run that computes assets concurrently.

An asset is ready as soon as every upstream asset has its output, not when a whole "wave" of the
graph is done. When an asset fails, everything downstream of it can never run and is skipped at
once, naming the first blocked upstream asset, as the in-process executor reports it.
"""

from __future__ import annotations

from collections import deque

from host._graph import Plan

__all__ = ["Frontier"]


class Frontier:
    """Tracks the assets of ``plan`` that wait, are ready, run, or are finished.

    Not thread-safe: one coordinating thread drives it.
    """

    def __init__(self, plan: Plan) -> None:
        self._order = plan.order
        self._downstream = plan.downstream()
        self._waiting: dict[str, set[str]] = {}
        self._ready: deque[str] = deque()
        self._running: set[str] = set()
        self._finished: set[str] = set()
        for key, step in plan.steps.items():
            if step.upstream:
                self._waiting[key] = set(step.upstream)
            else:
                self._ready.append(key)

    def __bool__(self) -> bool:
        """Whether some asset is still ready, waiting or running."""
        return bool(self._ready or self._waiting or self._running)

    @property
    def ready(self) -> tuple[str, ...]:
        """The assets that can start now, in plan order of readiness."""
        return tuple(self._ready)

    @property
    def running(self) -> frozenset[str]:
        """The assets started and not finished."""
        return frozenset(self._running)

    def start(self, key: str) -> None:
        """Mark the ready asset ``key`` as running."""
        self._ready.remove(key)
        self._running.add(key)

    def unstart(self, key: str) -> None:
        """The running asset ``key`` never started after all (its worker was gone before it
        could): it is ready again, first."""
        self._running.remove(key)
        self._ready.appendleft(key)

    def finish(self, key: str, ok: bool) -> list[tuple[str, str]]:
        """Mark ``key`` as finished; return the assets now skipped as (key, blocked upstream).

        On success, downstream assets whose inputs are now all there become ready; on failure,
        every asset downstream of ``key`` is skipped.
        """
        self._running.discard(key)
        self._finished.add(key)
        if ok:
            for down in self._downstream[key]:
                waiting = self._waiting.get(down)
                if waiting is not None:
                    waiting.discard(key)
                    if not waiting:
                        del self._waiting[down]
                        self._ready.append(down)
            return []
        skipped: list[tuple[str, str]] = []
        blocked = deque([key])
        while blocked:
            up = blocked.popleft()
            for down in self._downstream[up]:
                if down in self._waiting:
                    del self._waiting[down]
                    self._finished.add(down)
                    skipped.append((down, up))
                    blocked.append(down)
        position = {key: i for i, key in enumerate(self._order)}
        return sorted(skipped, key=lambda pair: position[pair[0]])

    def abandon(self) -> list[str]:
        """Give up every asset that has not started; return them in plan order."""
        left = set(self._ready) | set(self._waiting)
        self._ready.clear()
        self._waiting.clear()
        self._finished.update(left)
        return [key for key in self._order if key in left]

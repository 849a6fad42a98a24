"""Timing: contenders interleaved in rounds, one sample each per round, medians reported.

The machines are noisy (other jobs share the two cores), so no contender gets a quiet stretch of
its own: round ``r`` runs every contender once, starting with a different one each round, and
every comparison is a ratio of medians measured in the same rounds.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Samples", "interleave", "timed"]


@dataclass
class Samples:
    """The samples of one contender on one workload, in seconds."""

    seconds: list[float] = field(default_factory=list)
    #: Extra figures a sample reported (e.g. how many setups ran), as the last sample gave them.
    info: dict[str, Any] = field(default_factory=dict)
    #: Why the contender stopped, if a run raised (it is not run again).
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def as_json(self) -> dict[str, Any]:
        if not self.seconds:
            return {"error": self.error or "no sample"}
        return {
            "median_s": self.median,
            "min_s": min(self.seconds),
            "max_s": max(self.seconds),
            "repetitions": len(self.seconds),
            "samples_s": self.seconds,
            **self.info,
        }


#: A contender's single run: returns seconds, or (seconds, extra figures).
Run = Callable[[], "float | tuple[float, dict[str, Any]]"]


def timed(fn: Callable[[], Any]) -> Callable[[], float]:
    """Time one call of ``fn`` with ``time.perf_counter``, after a full garbage collection."""

    def run() -> float:
        gc.collect()
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return run


def interleave(
    contenders: Mapping[str, Run],
    repetitions: Mapping[str, int],
    warmup: tuple[str, ...] = (),
) -> dict[str, Samples]:
    """Run each contender ``repetitions[name]`` times, interleaved in rounds.

    A contender whose run raises is dropped from the later rounds, with the error recorded.

    Args:
        contenders: name -> one run.
        repetitions: name -> how many samples to take; contenders with fewer drop out of the
            later rounds.
        warmup: contenders to run once, untimed, before the first round.
    """
    for name in warmup:
        contenders[name]()
    names = list(contenders)
    samples = {name: Samples() for name in names}
    for round_ in range(max(repetitions.values(), default=0)):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if round_ >= repetitions[name] or samples[name].error is not None:
                continue
            try:
                outcome = contenders[name]()
            except Exception as exc:  # the others' figures still count
                samples[name].error = f"{type(exc).__name__}: {exc}"
                continue
            if isinstance(outcome, tuple):
                seconds, info = outcome
                samples[name].info.update(info)
            else:
                seconds = outcome
            samples[name].seconds.append(seconds)
    return samples

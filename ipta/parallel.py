"""Independent tasks over this machine's cores: one worker process per core, results in order.

For work that runs on one thread at a time (scikit-learn's small probes, NumPy scoring), where a
second core otherwise sits idle. Each task must be a picklable function of picklable inputs and
must not depend on which process runs it, so the results equal a plain loop's exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_map(fn: Callable[[T], R], items: Iterable[T], jobs: int | None = None
                 ) -> Iterator[R]:
    """``fn`` of each item, in order, over ``jobs`` worker processes (default: :func:`cores`);
    a plain loop when one job or one item would do. ``items`` may be a generator: it is drawn
    from as workers become free (a few items ahead), never held whole."""
    jobs = jobs or cores()
    if isinstance(items, Sized):
        jobs = min(jobs, len(items))
    if jobs <= 1:
        return map(fn, items)
    from joblib import Parallel, delayed

    return Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
        delayed(fn)(item) for item in items)

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


def task_environment() -> dict[str, str]:
    """The caller's ``IPTA_*`` variables as they are now, the cache folder resolved: what a task
    carries to a worker, since workers outlive a call (a later call may have moved the cache, a
    test its word pairs' folder). The worker hands it to :func:`adopt_environment`."""
    from ipta.cache import ENV_VAR, cache_root

    env = {k: v for k, v in os.environ.items() if k.startswith("IPTA_")}
    env[ENV_VAR] = str(cache_root())
    return env


def adopt_environment(env: dict[str, str]) -> None:
    """In a worker: make the ``IPTA_*`` variables those of :func:`task_environment`'s caller."""
    for name in [n for n in os.environ if n.startswith("IPTA_") and n not in env]:
        del os.environ[name]
    os.environ.update(env)


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

"""Independent tasks over this machine's cores: one worker process per core, results in order.

For work that runs on one thread at a time (scikit-learn's small probes, NumPy scoring), where a
second core otherwise sits idle. Each task must be a picklable function of picklable inputs and
must not depend on which process runs it, so the results equal a plain loop's exactly.
"""

from __future__ import annotations

import functools
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


def one_blas_thread():
    """A context in which BLAS and OpenMP run on one thread, as in a worker of
    :func:`parallel_map`. Small problems (a probe's fit) with several threads on a busy 2-core
    machine were ~15x slower in our measurements (the threads' synchronisation); and a float32
    product's sums depend on how its threads split them, so a result computed here equals the
    one a worker computes only on one thread. ``threadpool_limits`` scans the process's loaded
    libraries at every call, 3 ms each, more than a probe's fit; here they are scanned again
    only once modules have been imported since the last scan (a new library comes with a new
    module)."""
    import sys

    return _thread_pools(len(sys.modules)).limit(limits=1)


@functools.lru_cache(maxsize=1)
def _thread_pools(n_modules: int):
    """Every thread pool of this process while it has ``n_modules`` modules, once SciPy's
    optimiser has loaded its own."""
    import scipy.optimize  # noqa: F401 (loads SciPy's BLAS before the scan)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()

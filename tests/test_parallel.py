"""Specification of ipta.parallel: independent tasks over worker processes, results in order."""

import os

from ipta.parallel import cores, parallel_map


def _pid_and_square(x: int) -> tuple[int, int]:
    import time

    time.sleep(0.05)  # long enough that one worker cannot take every task
    return os.getpid(), x * x


def test_results_come_in_the_order_of_the_items_from_several_processes():
    got = list(parallel_map(_pid_and_square, range(12), jobs=2))
    assert [square for _, square in got] == [x * x for x in range(12)]
    pids = {pid for pid, _ in got}
    assert os.getpid() not in pids and len(pids) == 2


def test_one_job_or_one_item_runs_in_this_process():
    assert {pid for pid, _ in parallel_map(_pid_and_square, range(3), jobs=1)} == {os.getpid()}
    assert [pid for pid, _ in parallel_map(_pid_and_square, [5], jobs=4)] == [os.getpid()]


def test_cores_counts_what_this_process_may_use():
    assert 1 <= cores() <= (os.cpu_count() or 1)


def test_a_generator_of_items_is_drawn_as_workers_free_up_not_held_whole():
    drawn = []

    def items():
        for x in range(40):
            drawn.append(x)
            yield x

    results = parallel_map(_pid_and_square, items(), jobs=2)
    first = next(iter(results))
    assert first[1] == 0 and len(drawn) < 40
    assert [square for _, square in [first, *results]] == [x * x for x in range(40)]

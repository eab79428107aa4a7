"""Specification of ipta.sae.schedules: the learning-rate warm-up and p-annealing's schedule."""

import pytest

from ipta.sae.schedules import lr_scale, next_p_step, p_at, p_index, sparsity_scale


@pytest.mark.parametrize("n", [1, 4, 10])
def test_p_schedule_boundaries(n):
    kw = dict(p_start=1.0, p_end=0.0, anneal_start=100, anneal_end=200, n_updates=n)
    assert p_at(0, **kw) == 1.0 and p_at(99, **kw) == 1.0 and p_at(100, **kw) == 1.0
    assert p_at(200, **kw) == pytest.approx(1.0 - (n - 1) / n)
    assert p_at(10_000, **kw) == p_at(200, **kw) > 0.0
    values = [p_at(s, **kw) for s in range(0, 300)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert len(set(values)) == n


def test_lr_and_sparsity_warmup_are_linear_then_flat():
    assert lr_scale(0, 200) == 0.0 and lr_scale(100, 200) == 0.5 and lr_scale(500, 200) == 1.0
    assert sparsity_scale(0, 400) == 0.0 and sparsity_scale(100, 400) == 0.25
    assert sparsity_scale(401, 400) == 1.0 and sparsity_scale(3, 0) == 1.0


def test_next_p_step_is_the_first_later_step_where_the_p_index_moves():
    for a, e, n in [(0, 999, 10), (100, 200, 10), (5, 17, 4), (3, 3, 5), (0, 50, 1)]:
        for step in range(0, 260):
            i = p_index(step, a, e, n)
            brute = next((t for t in range(step + 1, 1200) if p_index(t, a, e, n) != i), None)
            assert next_p_step(step, a, e, n) == brute

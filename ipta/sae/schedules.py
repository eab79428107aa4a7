"""Schedules of SAE training as small pure functions of the step (paper appendix H.3): the
learning-rate warm-up every variant shares, and p-annealing's sparsity warm-up and steps of p
(Karvonen et al. 2024)."""

from __future__ import annotations


def lr_scale(step: int, warmup_steps: int) -> float:
    """Linear learning-rate warm-up from 0 (step 0) to 1 (step ``warmup_steps``), then constant."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def sparsity_scale(step: int, warmup_steps: int) -> float:
    """Sparsity warm-up of p-annealing: the penalty grows linearly from 0 to full strength."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def p_index(step: int, anneal_start: int, anneal_end: int, n_updates: int) -> int:
    """How many of the ``n_updates`` evenly spaced p-steps (the first at ``anneal_start``, the
    last at ``anneal_end``) lie at or before ``step``, minus one; 0 before annealing starts."""
    if n_updates <= 1 or step < anneal_start:
        return 0
    span = max(anneal_end - anneal_start, 1)
    return min(n_updates - 1, (step - anneal_start) * (n_updates - 1) // span)


def p_at(step: int, p_start: float, p_end: float, anneal_start: int, anneal_end: int,
         n_updates: int) -> float:
    """The exponent p of the L_p^p penalty at ``step`` (p-annealing, Karvonen et al. 2024).

    p equals ``p_start`` until ``anneal_start``; then the i-th of ``n_updates`` evenly spaced
    steps (i = 0..n-1, the last at ``anneal_end``) sets p = p_start + (p_end - p_start) * i / n.
    So p moves from ``p_start`` towards ``p_end`` and stops one step short of it (p = 0 would
    make the penalty a constant).
    """
    i = p_index(step, anneal_start, anneal_end, n_updates)
    return float(p_start + (p_end - p_start) * i / max(n_updates, 1))


def next_p_step(step: int, anneal_start: int, anneal_end: int, n_updates: int) -> int | None:
    """The first step after ``step`` at which :func:`p_index` moves on; None once it no longer
    moves. Lets p-annealing fill its queue only in the steps just before a change of p."""
    i = p_index(step, anneal_start, anneal_end, n_updates)
    if n_updates <= 1 or i >= n_updates - 1:
        return None
    span = max(anneal_end - anneal_start, 1)
    return anneal_start + -(-(i + 1) * span // (n_updates - 1))  # ceil((i+1) span / (n-1))

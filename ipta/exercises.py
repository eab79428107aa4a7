"""Checks for the chapters' "Write it" exercises: a student's ``answer`` against ipta's own
computation of it, in the manner of nbgrader's visible tests.

Each chapter module declares its checks (``EXERCISES``: label -> :class:`Check`) and exposes
``check_exercise = checker(EXERCISES)``. Each checked exercise ends with a check cell,
``chapter.check_exercise(LABEL, answer, res)``, kept in the student notebooks. It prints one line: "not done yet" and what ``answer`` should hold
while the stub's ``answer = None`` stands (so "Run all" goes on to the next exercise), ✓ when
the answer matches; a wrong answer raises :class:`Wrong`, one line saying what differs. The
book runs every solution through its check, so a solution that drifts from its check fails the
build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class Wrong(AssertionError):
    """An answer that does not match; its message says which part and by how much."""

    def _render_traceback_(self) -> list[str]:  # one line in a notebook, no stack
        return [f"Not yet: {self}"]


@dataclass(frozen=True)
class Check:
    what: str
    """What ``answer`` must hold, in the student's words."""
    reference: Callable[[Any], Any]
    """The answer, computed from the chapter's result."""


def _close(name: str, got: Any, want: float, rtol: float = 1e-3, atol: float = 1e-6) -> None:
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Wrong(f"{name} should be a number, not {got!r}") from None
    if not np.isclose(value, want, rtol=rtol, atol=atol):
        raise Wrong(f"{name} is {value:.6g}; recompute it (it differs from ipta's by "
                    f"{value - want:+.3g})")


def _same_mapping(got: Any, want: Mapping[Any, float], what: str) -> None:
    if not isinstance(got, Mapping):
        raise Wrong(f"answer should be {what}, not a {type(got).__name__}")
    if set(got) != set(want):
        raise Wrong(f"answer's keys are {sorted(map(str, got))}, expected "
                    f"{sorted(map(str, want))}")
    for key, value in want.items():
        _close(f"answer[{key!r}]", got[key], value)


def check(checks: Mapping[str, Check], label: str, answer: Any, res: Any) -> None:
    """Check ``answer`` to the exercise ``label`` (one of ``checks``) against ipta's computation
    from ``res``: print one line ("✓ …" when it matches, "not done yet" while ``answer`` is
    None), raise :class:`Wrong` otherwise. Nothing is returned, so a check cell shows that one
    line and no value under it."""
    if label not in checks:
        raise KeyError(f"no check for exercise {label!r}; checked: {', '.join(checks)}")
    spec = checks[label]
    if answer is None:
        print(f"{label}: not done yet. Set `answer` to {spec.what}.")
        return
    _same_mapping(answer, spec.reference(res), spec.what)
    print(f"✓ {label}: your answer matches ipta's.")


def checker(checks: Mapping[str, Check]) -> Callable[[str, Any, Any], None]:
    """A chapter's ``check_exercise(label, answer, res)``, over its own ``checks``."""

    def check_exercise(label: str, answer: Any, res: Any) -> None:
        """Check ``answer`` to the exercise ``label`` (see :func:`ipta.exercises.check`)."""
        return check(checks, label, answer, res)

    return check_exercise

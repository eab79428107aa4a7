"""Progress bars: on a terminal or in Jupyter when asked for, never on a book page.

``ipta run`` executes notebooks with ``IPTA_PROGRESS=0`` (and ``TQDM_DISABLE=1`` for other
libraries' bars), so no bar, whatever its postfix, is written into an executed notebook; the
runner reports progress on the terminal itself.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENV_VAR = "IPTA_PROGRESS"


def wanted(asked: bool = True) -> bool:
    """Whether to draw a bar: asked for, and not switched off by ``IPTA_PROGRESS=0``."""
    return bool(asked) and os.environ.get(ENV_VAR, "1") != "0"


def bar(iterable: Any = None, *, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(iterable, **kwargs)`` when :func:`wanted`, else a disabled plain bar
    (``tqdm.auto`` is not even imported: in a kernel without ipywidgets that import warns)."""
    if not wanted(not disable):
        from tqdm.std import tqdm as plain

        return plain(iterable, disable=True, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def silence_notebook_bars() -> None:
    """When bars are off (``IPTA_PROGRESS=0``), make ``tqdm.auto`` the plain, disabled-by-
    ``TQDM_DISABLE`` bar for every library imported from here on: where ipywidgets is
    installed, ``tqdm.auto`` would otherwise draw a Jupyter widget, which ignores
    ``TQDM_DISABLE`` (transformers' GGUF conversion uses one) and would reach the page."""
    if wanted():
        return
    import tqdm.auto
    import tqdm.autonotebook
    import tqdm.std

    for module in (tqdm.auto, tqdm.autonotebook):
        module.tqdm, module.trange = tqdm.std.tqdm, tqdm.std.trange


# --------------------------------------------------------------- a notebook on the terminal
def _code_cells(nb: dict) -> list[dict]:
    """The source's code cells (papermill's injected parameters left out)."""
    return [c for c in nb.get("cells", []) if c.get("cell_type") == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def previous_durations(path: Path, profile: str) -> list[float] | None:
    """Seconds per code cell of the last executed copy of a notebook, if it ran ``profile``."""
    try:
        nb = json.loads(Path(path).read_text())
        if nb["metadata"]["papermill"]["parameters"].get("profile") != profile:
            return None
        return [float(c["metadata"]["papermill"].get("duration") or 0.0) for c in _code_cells(nb)]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


class NotebookProgress:
    """Report which cell of a running notebook papermill is at, the time elapsed and, from the
    last run of the same profile, about how long is left: one rewritten line on a terminal,
    a plain line every ``every`` seconds elsewhere (CI logs). Papermill saves the notebook it
    writes at each cell start; this reads that file from a background thread."""

    def __init__(self, name: str, running: Path, previous: list[float] | None = None,
                 every: float | None = None, stream: Any = None):
        self.name, self.running, self.previous = name, Path(running), previous
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every if every is not None else (1.0 if self.tty else 60.0)
        self.start = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "NotebookProgress":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        if self.tty:
            print("\r\033[K", end="", file=self.stream, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            line = self.line()
            if self.tty:
                print("\r\033[K" + line[:150], end="", file=self.stream, flush=True)
            else:
                print(line, file=self.stream, flush=True)

    def line(self) -> str:
        """``[ipta] NAME: cell i/n ('first line'), m:ss elapsed[, about m:ss left]``."""
        elapsed = time.monotonic() - self.start
        try:
            cells = _code_cells(json.loads(self.running.read_text()))
        except (OSError, ValueError):
            return f"[ipta] {self.name}: starting, {_clock(elapsed)} elapsed"
        started = [i for i, c in enumerate(cells)
                   if c.get("metadata", {}).get("papermill", {}).get("start_time")]
        if not started:
            return f"[ipta] {self.name}: starting, {_clock(elapsed)} elapsed"
        i = started[-1]
        first = next((ln for ln in "".join(cells[i].get("source", "")).splitlines()
                      if ln.strip()), "")
        text = (f"[ipta] {self.name}: cell {i + 1}/{len(cells)} ({first.strip()[:40]!r}), "
                f"{_clock(elapsed)} elapsed")
        if self.previous and len(self.previous) == len(cells):
            in_cell = _seconds_since(cells[i]["metadata"]["papermill"]["start_time"])
            left = max(self.previous[i] - in_cell, 0.0) + sum(self.previous[i + 1:])
            text += f", about {_clock(left)} left (last run)"
        return text


def _seconds_since(iso: str) -> float:
    try:
        then = datetime.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return 0.0
    return max((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds(), 0.0)

"""Execute the chapter notebooks with papermill and build the book with Jupyter Book.

Sources are Jupytext ``py:percent`` files in ``notebooks/``; papermill cannot read those, so each
is read with jupytext and handed to papermill as a notebook object.  Parameters are validated
against the chapter's config class (``ipta.chapters``) before any notebook starts, and injected
one by one, as papermill's ``-p NAME VALUE`` would, after the cell tagged ``parameters``. That
cell is generated from the chapter's Config (:func:`sync_notebooks`), so plain papermill sees
every parameter with its type and doc.  An executed
notebook is written to a temporary file and renamed into ``book/executed/`` only if every cell
ran, so the book never shows a half-run chapter.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipta.config import PROFILES, ConfigError
from ipta.figures import FIGURES_VARIABLE
from ipta.progress import NotebookProgress, previous_durations
from ipta.prose import with_user_expressions

EXECUTED_DIR = Path("book") / "executed"

# Kernels run by papermill write into the book. Progress bars (ours and third-party ones such
# as transformers' GGUF conversion) are switched off in the kernel (KERNEL_ENVIRONMENT); should
# one get through anyway, `drop_progress_output` strips it and counts it in the notebook's
# metadata (`ipta.progress_lines_dropped`, which the book tests require to be 0).
# A tqdm line: "<desc>: 12%|<bar>| 60/500 [00:01<00:08, 54.7it/s<postfix>]" or, without a total,
# "<desc>: 60it [00:01, 54.7it/s<postfix>]"; a postfix (", loss=291") may end the bracket.
_PROGRESS_LINE = re.compile(r"^[^\n]*(\d+%\|.*\||\d+it) .*\[\d+:\d+[^\]]*\]\s*$|TqdmWarning|"
                            r"from \.autonotebook import tqdm as notebook_tqdm")


def hide_default_parameters(nb: Any) -> Any:
    """Hide the source's default ``parameters`` cell in the book: papermill's injected cell below
    it, and the run-settings table, show the values that were actually used."""
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    return nb


WIDGET = "application/vnd.jupyter.widget-view+json"


def drop_progress_output(nb: Any) -> Any:
    """Remove stderr lines that are progress-bar redraws or tqdm's widget warning; keep the rest.
    The number removed goes to ``nb.metadata["ipta"]["progress_lines_dropped"]``."""
    dropped = 0
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET in data and _PROGRESS_LINE.search("".join(data.get("text/plain", ""))):
                dropped += 1  # a progress bar drawn as a Jupyter widget (ipywidgets installed)
                continue
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = [ln.rsplit("\r", 1)[-1] for ln in out.get("text", "").split("\n")]
                progress = [ln for ln in lines if _PROGRESS_LINE.search(ln)]
                dropped += len(progress)
                lines = [ln for ln in lines if ln.strip() and ln not in progress]
                if not lines:
                    continue
                out["text"] = "\n".join(lines) + "\n"
            kept.append(out)
        if cell.cell_type == "code":
            cell["outputs"] = kept
    nb.metadata.setdefault("ipta", {})["progress_lines_dropped"] = dropped
    if not any(WIDGET in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])):
        nb.metadata.pop("widgets", None)  # the state of bars no longer shown
    return nb
FAILED_DIR = Path("_build") / "failed"
FIGURES_DIR = "figures"
"""Beside the executed notebooks: the figures their ``{figure}`` directives show."""
LOG_DIR = Path("_build") / "logs"
"""Where each chapter's kernel writes its own messages (``<chapter>.kernel.log``)."""

PATH_VARIABLES = ("IPTA_CACHE_DIR", "IPTA_WORD_PAIRS_DIR")
"""Environment variables naming folders: made absolute against the directory ``ipta`` was run
from before a kernel starts (kernels run in ``notebooks/``, where a relative path means
something else)."""


def absolute_path_variables(environ: dict | None = None) -> None:
    """Make each of :data:`PATH_VARIABLES` that is set absolute, in place."""
    environ = os.environ if environ is None else environ
    for name in PATH_VARIABLES:
        if environ.get(name):
            environ[name] = str(Path(environ[name]).expanduser().absolute())


class RunError(RuntimeError):
    """A notebook failed; the message names the notebook, the cell and the error."""


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``_config.yml`` and ``notebooks/``."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_config.yml").is_file() and (d / "notebooks").is_dir():
            return d
    raise FileNotFoundError(f"no ipta project (a folder with _config.yml and notebooks/) at or above {here}; "
                            "run from the repository or pass --root")


def list_chapters(root: Path) -> list[str]:
    """Notebook stems in ``notebooks/`` (``NN_name.py``), in order."""
    return sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.py"))


def resolve_chapter(name: str, root: Path) -> str:
    """Accept ``02_simulations``, ``02``, ``simulations`` or a path; return the stem."""
    chapters = list_chapters(root)
    stem = Path(name).stem
    matches = [c for c in chapters if c == stem or c.split("_", 1)[0] == stem or c.split("_", 1)[1] == stem]
    if len(matches) != 1:
        raise ConfigError(f"unknown notebook {name!r}; choose one of {', '.join(chapters)}")
    return matches[0]


def validate_params(chapters: Sequence[str], profile: str, params: Mapping[str, Any],
                    config_classes: Mapping[str, type] | None = None) -> dict[str, dict[str, Any]]:
    """Per chapter, the overrides it declares, checked by building its config; nothing runs yet.

    A parameter must be declared by at least one of the chapters to run; each chapter gets the
    ones it declares.  Raises ConfigError naming the parameter and what is allowed.
    """
    from ipta.chapters import config_class

    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    classes = {c: (config_classes or {}).get(c) or config_class(c) for c in chapters}
    per_chapter: dict[str, dict[str, Any]] = {}
    for name in params:
        if not any(name in cls.field_names() for cls in classes.values()):
            known = sorted({f for cls in classes.values() for f in cls.field_names()})
            raise ConfigError(f"unknown parameter {name!r} for {', '.join(chapters)}; "
                              f"known parameters: {', '.join(known)}")
    for chapter, cls in classes.items():
        mine = {k: v for k, v in params.items() if k in cls.field_names()}
        values = cls.for_profile(profile, **mine).to_dict()
        per_chapter[chapter] = {k: values[k] for k in mine}
    return per_chapter


@dataclass
class RunResult:
    chapter: str
    path: Path
    seconds: float


def _failing_cell(nb: Any) -> tuple[int, str, str]:
    """(1-based code-cell number in the source, its first line, the error) of the first failed cell."""
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        number += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
                return number, first, f"{out.get('ename')}: {out.get('evalue')}"
    return 0, "", "unknown error"


KERNEL_ENVIRONMENT = {"IPTA_PROGRESS": "0", "TQDM_DISABLE": "1",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' bars follow it
                      "PYTHONWARNINGS": "ignore:IProgress not found"}
"""Set for the kernels ``ipta run`` starts: no progress bar, ours or a library's, can reach a
page (the terminal gets :class:`ipta.progress.NotebookProgress` instead), nor tqdm's warning,
raised when a library imports ``tqdm.auto`` in a kernel without ipywidgets."""


@contextlib.contextmanager
def kernel_environment(extra: Mapping[str, str] | None = None):
    """:data:`KERNEL_ENVIRONMENT` and ``extra`` in ``os.environ`` (which kernels inherit; a
    user's own ``PYTHONWARNINGS`` is kept, ours added), then restored."""
    wanted = {**KERNEL_ENVIRONMENT, **(extra or {})}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    if saved["PYTHONWARNINGS"]:
        os.environ["PYTHONWARNINGS"] = f"{saved['PYTHONWARNINGS']},{KERNEL_ENVIRONMENT['PYTHONWARNINGS']}"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_manager(log: Path) -> dict[str, Any]:
    """Papermill's ``kernel_manager_class``: the kernel's own stdout and stderr (its logging,
    and on an interrupt the tracebacks of sockets closed under it) go to ``log``, not to the
    terminal; on POSIX it talks to its kernel over local IPC sockets instead of TCP (no
    unencrypted TCP port, and no warning about one)."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class LoggedKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "ab") as handle:  # the child keeps its own copy of the descriptor
                kw.update(stdout=handle, stderr=handle)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    if os.name != "posix":
        return {"kernel_manager_class": LoggedKernelManager}

    class IPCKernelManager(LoggedKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return {"kernel_manager_class": IPCKernelManager}


def _remove_stale_running(out_dir: Path) -> None:
    """Delete the temporary notebooks and figure folders of runs that were killed (their
    process is gone)."""
    for path in [*out_dir.glob(".*.*.running.ipynb"), *out_dir.glob(".*.*.figures")]:
        pid = path.name.split(".")[2]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def _publish_figures(figures: Path, out_dir: Path) -> None:
    """Move a finished run's figures into ``out_dir/figures/``, where its notebook's
    ``{figure}`` directives point (each file replaced whole)."""
    if not figures.is_dir():
        return
    target = out_dir / FIGURES_DIR
    target.mkdir(exist_ok=True)
    for path in figures.iterdir():
        os.replace(path, target / path.name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _last_started_cell(path: Path) -> tuple[int, str]:
    """(1-based code-cell number, first line) of the last cell that papermill started, read from
    the notebook it saves at each cell start (cells not reached have no start time); (0, "")
    if none can be read."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - whatever the kernel's death left behind
        return 0, ""
    number, found = 0, (0, "")
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        number += 1
        if cell.metadata.get("papermill", {}).get("start_time"):
            found = number, next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return found


def execute_chapter(chapter: str, root: Path, profile: str, params: Mapping[str, Any],
                    executed_dir: Path | None = None, kernel: str = "python3") -> RunResult:
    """Run one notebook top to bottom on a fresh kernel; write it where the book reads it."""
    import jupytext
    import nbformat
    import papermill
    from nbclient.exceptions import DeadKernelError

    out_dir = executed_dir or root / EXECUTED_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(root / "notebooks" / f"{chapter}.py")
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    final = out_dir / f"{chapter}.ipynb"
    _remove_stale_running(out_dir)
    tmp = out_dir / f".{chapter}.{os.getpid()}.running.ipynb"  # two runs never share it
    figures = out_dir / f".{chapter}.{os.getpid()}.figures"  # published with the notebook
    previous = previous_durations(final, profile)
    log = root / LOG_DIR / f"{chapter}.kernel.log"
    log.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        with kernel_environment({FIGURES_VARIABLE: str(figures)}), \
                NotebookProgress(chapter, tmp, previous):
            papermill.execute_notebook(
                nb, str(tmp), parameters={"profile": profile, **dict(params)},
                kernel_name=kernel, language="python", cwd=str(root / "notebooks"),
                progress_bar=False, **_kernel_manager(log))
        published = with_user_expressions(hide_default_parameters(drop_progress_output(
            nbformat.read(tmp, as_version=4))))
        nbformat.write(published, tmp)
        _publish_figures(figures, out_dir)  # first: the notebook that shows them comes last
        os.replace(tmp, final)
    except DeadKernelError as err:
        cell, first = _last_started_cell(tmp)
        where = f"in code cell {cell} ({first.strip()!r})" if cell else "before its first cell"
        raise RunError(f"the kernel running notebook {chapter} died {where}: often the machine "
                       "ran out of memory (try a smaller profile or fewer tokens, features or "
                       f"seeds); nothing was published (the kernel's own messages are in "
                       f"{log})") from err
    except papermill.PapermillExecutionError as err:
        failed = root / FAILED_DIR / f"{chapter}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, failed)
        cell, first, error = _failing_cell(jupytext.read(failed))
        raise RunError(f"notebook {chapter} failed in code cell {cell} ({first.strip()!r}): {error}\n"
                       f"the executed notebook with the traceback is in {failed}") from err
    finally:
        if tmp.exists():
            tmp.unlink()
        shutil.rmtree(figures, ignore_errors=True)
    return RunResult(chapter, final, time.perf_counter() - start)


def run_chapters(chapters: Sequence[str], root: Path, profile: str, params: Mapping[str, Any],
                 config_classes: Mapping[str, type] | None = None,
                 executed_dir: Path | None = None) -> list[RunResult]:
    """Validate every parameter and the cache's location first, then run the notebooks in order,
    stopping at the first failure."""
    from ipta.cache import cache_root

    absolute_path_variables()
    per_chapter = validate_params(chapters, profile, params, config_classes)
    cache_root()  # a cache variable naming a file is refused here, not in a kernel's traceback
    results = []
    for chapter in chapters:
        print(f"[ipta] running {chapter} (profile {profile}"
              + (f", {per_chapter[chapter]}" if per_chapter[chapter] else "") + ")", flush=True)
        res = execute_chapter(chapter, root, profile, per_chapter[chapter], executed_dir)
        print(f"[ipta] {chapter} done in {res.seconds:.0f} s -> {res.path}", flush=True)
        results.append(res)
    return results


def build_book(root: Path, build_dir: Path | None = None, strict: bool = True) -> Path:
    """Build the HTML site with Jupyter Book 1.x (warnings are errors); return the index page.

    Jupyter Book writes to ``<build_dir>/_build/html``; the default ``build_dir`` is the project root.
    """
    out = build_dir or root
    # jupyter_book has no __main__; call its click group in a child interpreter of this environment.
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root),
           "--path-output", str(out), "--keep-going"]
    if strict:
        cmd += ["--warningiserror", "--nitpick"]
    missing = [c for c in list_chapters(root) if not (root / EXECUTED_DIR / f"{c}.ipynb").exists()]
    if missing:
        raise RunError(f"chapters not executed yet: {', '.join(missing)}; run `ipta run` first")
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0:
        raise RunError(f"the book build failed (exit {proc.returncode}); see the messages above")
    return out / "_build" / "html" / "index.html"


# ------------------------------------------------------------------ notebooks and Configs
PARAMETERS_MARK = '# %% tags=["parameters"]\n'


def _with_parameters_cell(text: str, cell: str, where: str) -> str:
    """``text`` (a py:percent source) with its parameters cell's body replaced by ``cell``."""
    if PARAMETERS_MARK not in text:
        raise RunError(f"{where} has no cell tagged parameters")
    head, rest = text.split(PARAMETERS_MARK, 1)
    end = rest.find("\n# %%")
    tail = rest[end:] if end >= 0 else "\n"
    return f"{head}{PARAMETERS_MARK}{cell}\n{tail}"


def sync_notebooks(root: Path, *, check: bool = False, write_ipynb: bool = True) -> list[str]:
    """Make each chapter's ``parameters`` cell the one its Config generates
    (:func:`ipta.notebook.parameters_cell_source`) and write the paired ``.ipynb`` (no outputs)
    beside each source, for Jupyter and plain papermill. Returns the sources whose cell was
    out of date; ``check=True`` changes nothing."""
    import jupytext

    from ipta.chapters import config_class
    from ipta.notebook import parameters_cell_source

    stale = []
    for chapter in list_chapters(root):
        source = root / "notebooks" / f"{chapter}.py"
        text = source.read_text(encoding="utf-8")
        wanted = _with_parameters_cell(text, parameters_cell_source(config_class(chapter)),
                                       str(source))
        if wanted != text:
            stale.append(str(source.relative_to(root)))
            if not check:
                source.write_text(wanted, encoding="utf-8")
        if write_ipynb and not check:
            jupytext.write(jupytext.reads(wanted, fmt="py:percent"),
                           source.with_suffix(".ipynb"), fmt="ipynb")
    return stale

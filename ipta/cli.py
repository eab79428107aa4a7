"""The ``ipta`` command: run chapter notebooks with a profile and parameters, build the book.

    ipta run [NOTEBOOK ...] --profile {smoke,classroom,default,paper} [-p NAME VALUE ...]
    ipta book [--build-dir DIR]
    ipta params [NOTEBOOK ...]
    ipta export-sae RUN OUT [--model NAME] [--layer N]
    ipta sae-long [--out FILE] [-p NAME VALUE ...]
    ipta cache verify [--move] | ipta cache clean [--checkpoint-days D]
    ipta notebooks [--check]
    ipta student OUT_DIR
    ipta extract-activations [--profile P] [-p NAME VALUE ...]   (also under torchrun)
    ipta train-sae [--profile P] [-p NAME VALUE ...]             (also under torchrun)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipta.cache import CacheLocationError
from ipta.config import PROFILES, ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ipta", description=__doc__.split("\n\n")[0])
    p.add_argument("--root", type=Path, default=None,
                   help="project root (default: the nearest folder with _config.yml and notebooks/)")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute notebooks with papermill into book/executed/")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="e.g. 02_simulations, 02 or simulations (default: all, in order)")
    run.add_argument("--profile", default="default", choices=PROFILES,
                     help="smoke: seconds, for tests; classroom: each chapter in ~2 min on a laptop; default: the book on a CPU; paper: the paper's settings, for a GPU")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="override one parameter (repeatable); lists as a,b,c or JSON")
    run.add_argument("--allow-huge", action="store_true",
                     help="lift the soft limits on sizes and counts (they catch typos such as "
                          "steps=1000000000000); hard bounds still hold")

    book = sub.add_parser("book", help="build the HTML site (warnings are errors)")
    book.add_argument("--build-dir", type=Path, default=None, help="the site goes to DIR/_build/html (default: the project root)")

    params = sub.add_parser("params", help="list each chapter's parameters, defaults and allowed values")
    params.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    params.add_argument("--profile", default="default", choices=PROFILES,
                        help="show the values this profile uses")
    export = sub.add_parser("export-sae", help="write a trained SAE in the SAELens layout "
                            "(cfg.json + sae_weights.safetensors)")
    export.add_argument("run", metavar="RUN",
                        help="variant:seed[:k<k>][:a<alpha>] of a run the SAE chapter trained "
                             "(e.g. topk:0), or a folder holding a saved SAE")
    export.add_argument("out", type=Path, metavar="OUT", help="folder to write")
    export.add_argument("--model", default=None, help="model name for cfg.json (default: the "
                        "one the run was trained on, when indexed)")
    export.add_argument("--layer", type=int, default=None, help="hidden_states index it read")
    export.add_argument("--layout", choices=("unit", "raw"), default="unit",
                        help="unit: decoder rows of norm 1, the norm folded into the encoder "
                             "(SAEBench, Neuronpedia); raw: our decoder as trained, codes "
                             "equal to ours")
    long = sub.add_parser("sae-long", help="train the SAE chapter's long setting and write the "
                          "summary its page draws (about 20 minutes on 2 CPU cores)")
    long.add_argument("--out", type=Path, default=None,
                      help="summary file (default: book/results/sae_long.json in the project)")
    long.add_argument("-p", "--param", nargs=2, action="append", default=[],
                      metavar=("NAME", "VALUE"), help="override one of the long setting's "
                      "parameters (repeatable)")
    nbs = sub.add_parser("notebooks", help="write each chapter's parameters cell from its "
                         "Config and the paired .ipynb files (for Jupyter and plain papermill)")
    nbs.add_argument("--check", action="store_true", help="change nothing; exit 1 if a "
                     "parameters cell is out of date")
    student = sub.add_parser("student", help="write student notebooks: the chapters with the "
                             "exercises' solutions replaced by stubs")
    student.add_argument("out", type=Path, metavar="OUT_DIR", help="folder to write")
    for command, text in (
            ("extract-activations", "fill the SAE chapter's activation cache entry; under "
             "torchrun every process extracts its share"),
            ("train-sae", "train the SAE chapter's SAEs into the cache; under torchrun all "
             "processes train each SAE together (DDP)")):
        heavy = sub.add_parser(command, help=text)
        heavy.add_argument("--profile", default="default", choices=PROFILES)
        heavy.add_argument("-p", "--param", nargs=2, action="append", default=[],
                           metavar=("NAME", "VALUE"), help="a parameter of the SAE chapter")
    cache = sub.add_parser("cache", help="check or tidy the cache ($IPTA_CACHE_DIR)")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True)
    verify = cache_sub.add_parser("verify", help="hash every file of every entry against its "
                                  "manifest; exit 1 if any entry is damaged")
    verify.add_argument("--move", action="store_true", help="move damaged entries aside (the "
                        "next run rebuilds them)")
    clean = cache_sub.add_parser("clean", help="remove temporaries of builds that are not "
                                 "running, damaged entries moved aside, and old SAE checkpoints")
    clean.add_argument("--checkpoint-days", type=float, default=7.0, help="keep SAE checkpoints "
                       "touched within this many days (default 7)")
    return p


def _cache_command(args: argparse.Namespace) -> int:
    from ipta import cache

    if args.cache_command == "clean":
        gone = cache.clean(checkpoint_days=args.checkpoint_days)
        for path in gone:
            print(f"removed {path}")
        print(f"[ipta] {len(gone)} item(s) removed from {cache.cache_root()}")
        return 0
    report = cache.verify(full=True, move=args.move)
    damaged = [(path, problem) for path, problem in report if problem is not None]
    for path, problem in damaged:
        print(f"DAMAGED {path.parent.name}/{path.name}: {problem}"
              + (" (moved aside)" if args.move else ""))
    print(f"[ipta] {len(report)} entries checked in {cache.cache_root()}, {len(damaged)} damaged"
          + ("" if args.move or not damaged else "; `ipta cache verify --move` sets them aside, "
             "the next run rebuilds them"))
    return 1 if damaged else 0


@contextlib.contextmanager
def _torchrun_group(cfg) -> Iterator[Any]:
    """The SAE chapter's ``cfg`` for this process: under torchrun (``WORLD_SIZE`` > 1) inside a
    process group (NCCL with each process on its own GPU when there are GPUs, gloo on the CPU
    otherwise); as it is for a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield cfg
        return
    import torch
    import torch.distributed as dist

    gpu = torch.cuda.is_available() and cfg.device in ("auto", "cuda")
    dist.init_process_group("nccl" if gpu else "gloo")
    try:  # the device is not part of any cache key
        yield cfg.replace(device=f"cuda:{os.environ.get('LOCAL_RANK', '0')}") if gpu else cfg
    finally:
        dist.destroy_process_group()


def _extract_activations(profile: str, params: dict[str, str]) -> int:
    """The SAE chapter's activations into the cache, by every process torchrun started (each
    extracts its share of the windows); one process without it."""
    from ipta.sae import runs
    from ipta.sae.config import Config

    lead = int(os.environ.get("RANK", "0")) == 0
    with _torchrun_group(Config.for_profile(profile, **params)) as cfg:
        store = runs.activations(cfg, progress=lead)
    if lead:
        print(f"[ipta] {store.n_tokens} activation rows of {cfg.model} in {store.directory}")
    return 0


def _train_saes(profile: str, params: dict[str, str]) -> int:
    """Every SAE of the SAE chapter into the cache (where ``ipta run`` finds them), each trained
    by all the processes torchrun started together; one process without it."""
    from ipta.sae import runs
    from ipta.sae.config import Config

    lead = int(os.environ.get("RANK", "0")) == 0
    cfg = Config.for_profile(profile, **params)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise ConfigError(f"parameter 'batch_size': {cfg.batch_size} is not a multiple of the "
                          f"{world} processes torchrun started; each must hold an equal share")
    with _torchrun_group(cfg) as cfg:
        store, concepts = runs.chapter_inputs(cfg, progress=lead)
        trained = runs.train_all(cfg, store, concepts, progress=lead)
    if lead:
        folders = {r.directory for group in trained for r in group}
        print(f"[ipta] {len(folders)} SAEs of profile {profile} are in the cache; `ipta run "
              f"04_sae --profile {profile}` reads them")
    return 0


def _sae_long(root: Path, out: Path | None, params: dict[str, str]) -> Path:
    import json
    import time

    from ipta.sae import chapter, long

    cfg = long.long_config(**params)
    start = time.perf_counter()
    res = chapter.run(cfg, progress=False)
    summary = long.summarise_long(res.main, res.controls, cfg)
    summary["wall_seconds"] = round(time.perf_counter() - start)
    out = out or root / long.LONG_RESULT
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True))
    tmp.replace(out)
    return out


def _print_params(chapters: list[str], profile: str) -> None:
    from ipta.chapters import config_class

    for chapter in chapters:
        cls = config_class(chapter)
        values = cls.for_profile(profile).to_dict()
        print(f"{chapter} ({cls.__name__}, profile {profile})")
        for name, _default, allowed, doc in cls.describe():
            print(f"  {name} = {values[name]!r}  [{allowed}]\n      {doc}")


def _os_error_line(err: OSError) -> str:
    """What happened, and to which path, in words: 'No space left on device: /cache/...'."""
    what = err.strerror or type(err).__name__
    where = err.filename or ""
    return f"{what}: {where}" if where else what


def _traceback_log() -> Path:
    """Write the current exception's traceback to a log file in the temporary folder and return
    its path (the one-line message names it)."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="ipta-error-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        traceback.print_exc(file=fh)
    return Path(name)


def main(argv: list[str] | None = None) -> int:
    from ipta import runner

    args = _parser().parse_args(argv)
    terminated = False

    def on_stop(signum, frame):  # Ctrl-C or SIGTERM: temporaries go, one line is printed
        nonlocal terminated
        terminated = signum == signal.SIGTERM
        # The process is ending: the notebook client's own reports on the kernel it now stops
        # (a kernel "died", a task's exception "never retrieved") would bury our one line.
        logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    previous = ({sig: signal.signal(sig, on_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
                if threading.current_thread() is threading.main_thread() else {})
    try:
        if args.command == "cache":
            return _cache_command(args)
        if args.command == "extract-activations":
            return _extract_activations(args.profile, dict(args.param))
        if args.command == "train-sae":
            return _train_saes(args.profile, dict(args.param))
        root = runner.project_root(args.root)
        if args.command == "export-sae":
            from ipta.sae.export import export_saelens

            out = export_saelens(args.run, args.out, model_name=args.model, layer=args.layer,
                                 layout=args.layout)
            print(f"[ipta] SAELens layout written to {out}")
            return 0
        if args.command == "sae-long":
            out = _sae_long(root, args.out, dict(args.param))
            print(f"[ipta] the long setting's summary is in {out}")
            return 0
        if args.command == "student":
            from ipta.classroom import write_student_notebooks

            for path in write_student_notebooks(root, args.out):
                print(f"wrote {path}")
            return 0
        if args.command == "notebooks":
            stale = runner.sync_notebooks(root, check=args.check)
            for path in stale:
                print(f"{'out of date' if args.check else 'rewrote'}: {path}")
            if not args.check:
                print("[ipta] notebooks/*.ipynb written; run one with papermill, e.g. "
                      "papermill notebooks/02_simulations.ipynb out.ipynb -p profile smoke")
            return 1 if args.check and stale else 0
        if args.command == "book":
            index = runner.build_book(root, args.build_dir)
            print(f"[ipta] the book is at {index}")
            return 0
        chapters = ([runner.resolve_chapter(n, root) for n in args.notebooks]
                    or runner.list_chapters(root))
        if args.command == "params":
            _print_params(chapters, args.profile)
            return 0
        names = [name for name, _ in args.param]
        duplicated = {n for n in names if names.count(n) > 1}
        if duplicated:
            raise ConfigError(f"parameter {sorted(duplicated)[0]!r} is given more than once")
        params = dict(args.param)
        if args.allow_huge:
            params["allow_huge"] = "true"
        runner.run_chapters(chapters, root, args.profile, params)
        return 0
    except (ConfigError, CacheLocationError, runner.RunError, FileNotFoundError) as err:
        print(f"ipta: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, (ConfigError, CacheLocationError)) else 1
    except KeyboardInterrupt:
        print("ipta: interrupted; nothing half-done was published (finished cache entries and "
              "SAE checkpoints are kept, and the next run resumes from them)", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:  # `ipta params | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit's flush of stdout cannot fail again
        return 141
    except OSError as err:  # a full disk, a permission, a read-only file system
        print(f"ipta: error: {_os_error_line(err)}; nothing half-done was published (the full "
              f"traceback is in {_traceback_log()})", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())

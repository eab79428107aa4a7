"""Training and evaluating the SAE chapter's runs: the concept data of appendix H.2 and one
cached, resumable training run per (variant, seed, alpha, k).

``cfg`` is the SAE chapter's :class:`~ipta.sae.config.Config`. A run's cache key is derived:
every field of ``cfg`` that can change a result, except the sweep's own axes (which variants,
seeds and alphas exist: :data:`SWEEP_FIELDS`), which the run keys by its own variant, seed,
alpha and k; plus the activation store, the concept data and the code of this module and
everything it imports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import (cache_root, call_spec, distributed_world, entry_dir, get_or_build_dir,
                        get_or_build_dir_collective)
from ipta.sae import metrics
from ipta.sae.config import Config

SWEEP_FIELDS = ("variants", "seeds", "alphas", "matched_l0", "alpha", "k")
"""Config fields that choose which runs exist, not what one run computes."""
VERDICT_FIELDS = ("n_boot", "null_seeds", "planted_steps")
"""Config fields that only the verdicts and the planted benchmark read."""


@dataclass
class ConceptData:
    """Pair representations with their probe logits, the inputs of the H.2 metric."""

    names: tuple[str, ...]
    source: str
    reps_ND: np.ndarray
    logits_NK: np.ndarray
    concept_N: np.ndarray
    label_N: np.ndarray
    heldout: metrics.HeldOut | None = None
    """The metric's held-out view (:func:`heldout_view`)."""


@dataclass
class Run:
    """One SAE (or a control of :mod:`ipta.sae.controls`), its history over steps and its final
    evaluation."""

    variant: str
    seed: int
    alpha: float
    k: int
    history: list[dict[str, Any]]
    final: dict[str, Any]
    directory: Path | None
    kind: str = "trained"
    """``trained``, or the control it is (``untrained``, ``random``, ...)."""

    def sae(self):
        from ipta.sae.model import load_sae

        return load_sae(self.directory / "sae")


def activations(cfg: Config, progress: bool = True, loaded=None):
    """The cached activation store of ``cfg`` (built on first use; ``loaded`` as in
    :func:`ipta.lm.corpus.cached_activations`)."""
    from ipta.lm.corpus import cached_activations

    return cached_activations(cfg.model, cfg.corpus, n_tokens=cfg.n_tokens,
                              revision=cfg.revision, layer=cfg.layer,
                              context_length=cfg.context_length, batch_size=cfg.extract_batch,
                              dtype=cfg.act_dtype, max_windows_per_doc=cfg.max_windows_per_doc,
                              device=cfg.device, progress=progress, loaded=loaded)


def concept_data(cfg: Config, progress: bool = True, loaded=None) -> ConceptData:
    """Word-pair representations at ``cfg.layer`` and every concept probe's logits on all of them.

    Each concept's probe (base = 1, target = 0) is fitted on its own pairs; its logits are then
    taken on every word of every concept, so the K logit columns and the F feature columns
    share the same N rows, as eq. (93)-(95) stack them.
    """
    from ipta.lm.activations import cached_word_representations
    from ipta.lm.concepts import load_concept_set, paper_directory_named
    from ipta.probes import fit_concept_probe

    source = cfg.concept_source
    if source == "auto":
        source = "paper" if paper_directory_named(cfg.word_pairs_dir) else "embedded"
    cs = load_concept_set(source, cfg.word_pairs_dir)
    words, concept_N, label_N = [], [], []
    for k, name in enumerate(cs.names):
        pairs = cs.pairs[name][:cfg.max_pairs_per_concept or None]
        for base, target in pairs:
            words += [base, target]
            concept_N += [k, k]
            label_N += [1, 0]
    # Each distinct word once, in order of first appearance: the list the probing chapter
    # runs through the same model, so a book build computes these representations once.
    distinct = list(dict.fromkeys(words))
    reps_WD = cached_word_representations(cfg.model, distinct, revision=cfg.revision,
                                          layer=cfg.layer, device=cfg.device, progress=progress,
                                          loaded=loaded)
    row = {w: i for i, w in enumerate(distinct)}
    reps_ND = reps_WD[[row[w] for w in words]]
    concept_N, label_N = np.array(concept_N), np.array(label_N)
    probes = [fit_concept_probe(reps_ND[concept_N == k], label_N[concept_N == k], C=cfg.probe_C)
              for k in range(len(cs.names))]
    logits_NK = np.stack([p.logits(reps_ND) for p in probes], axis=1)
    pairs = tuple(tuple(map(tuple, cs.pairs[n][:cfg.max_pairs_per_concept or None]))
                  for n in cs.names)
    return ConceptData(cs.names, cs.source, reps_ND, logits_NK, concept_N, label_N,
                       heldout_view(reps_ND, concept_N, label_N, pairs, cfg.probe_C))


def chapter_inputs(cfg: Config, progress: bool = True):
    """``(store, concepts)``: the activation store and the concept data of ``cfg``, read from
    the cache; on a miss the model is loaded once for both."""
    from ipta.lm.models import LazyModel

    model = LazyModel(cfg.model, revision=cfg.revision, device=cfg.device)
    return activations(cfg, progress, loaded=model), concept_data(cfg, progress, loaded=model)


def heldout_view(reps_ND: np.ndarray, concept_N: np.ndarray, label_N: np.ndarray,
                 pairs: tuple[tuple[tuple[str, str], ...], ...], C: float,
                 seed: int = 0) -> metrics.HeldOut:
    """Split the words in halves (no word on both sides; duplicate and identical pairs dropped),
    fit each concept's probe on the first half's pairs and take its logits on every row.

    Rows come in (base, target) twos, concept after concept, in the order of ``pairs``."""
    from ipta.probes import fit_concept_probe, word_split

    splits = word_split(pairs, 0.5, np.random.default_rng([seed, 404]))
    fit_N, score_N = np.zeros(len(reps_ND), bool), np.zeros(len(reps_ND), bool)
    first_row = 0
    for (fit, score), concept_pairs in zip(splits, pairs):
        for side, idx in ((fit_N, fit), (score_N, score)):
            side[first_row + 2 * idx] = side[first_row + 2 * idx + 1] = True
        first_row += 2 * len(concept_pairs)
    logits = []
    for k in range(len(pairs)):
        rows = fit_N & (concept_N == k)
        logits.append(fit_concept_probe(reps_ND[rows], label_N[rows], C=C).logits(reps_ND)
                      if rows.any() else np.zeros(len(reps_ND)))
    return metrics.HeldOut(np.stack(logits, axis=1), fit_N, score_N)


def mechanism(variant: str):
    """The registered mechanism class of ``variant`` (:data:`ipta.sae.mechanisms.MECHANISMS`)."""
    from ipta.sae.mechanisms import MECHANISMS

    if variant not in MECHANISMS:
        raise ValueError(f"SAE variant {variant!r} is not registered; registered: "
                         f"{', '.join(MECHANISMS)}")
    return MECHANISMS[variant]


def data_split(cfg: Config, store) -> tuple[Any, np.ndarray]:
    """The training rows (a slice that draws batches) and the held-out validation rows: the
    last ``cfg.val_tokens`` of the store."""
    cut = store.n_tokens - cfg.val_tokens
    return store.split(0, cut), store.split(cut, store.n_tokens).all()


def new_sae(cfg: Config, variant: str, seed: int, d_model: int, *, alpha: float, k: int):
    """One run's SAE before training: ``variant``'s mechanism with its hyperparameters under
    ``cfg`` (:meth:`~ipta.sae.mechanisms.Mechanism.hparams_from`), initialised from ``seed``."""
    from ipta.sae.model import SparseAutoencoder

    hparams = mechanism(variant).hparams_from(cfg, seed=seed, alpha=alpha, k=k)
    return SparseAutoencoder(d_model, cfg.n_features, variant, hparams, seed=seed)


def calibration_sample(train, seed: int, n: int = 4096):
    """Training activations (model units) on which an inference rule is calibrated."""
    import torch

    return train.sample(torch.Generator().manual_seed(seed + 2), n)


def calibrate(sae, calib_ND) -> None:
    """Set the mechanism's inference rule on training activations (batch-top-k's threshold)."""
    import torch

    with torch.no_grad():
        xn_ND = calib_ND.to(sae.W_dec_FD.device) * sae.input_scale
        sae.mechanism.calibrate(sae.pre_activations(xn_ND))


@contextlib.contextmanager
def _calibrated(sae, calib_ND):
    """The SAE with its inference rule calibrated, then its training state restored."""
    saved = {k: v.clone() for k, v in sae.mechanism.state_dict().items()}
    calibrate(sae, calib_ND)
    try:
        yield
    finally:
        sae.mechanism.load_state_dict(saved)


def train_run(cfg: Config, variant: str, seed: int, store, concepts: ConceptData, *,
              alpha: float | None = None, k: int | None = None, progress: bool = True) -> Run:
    """Train one SAE (or read it from the cache); checkpoints let a killed run resume.

    Keyed by every argument (``cfg`` without the sweep's axes, :data:`SWEEP_FIELDS`, which the
    run keys by its own variant, seed, alpha and k), the SAE it starts from and this module's
    code. Under torchrun every process takes part in training
    (:func:`ipta.sae.train.train_sae`) and rank 0 evaluates and writes the entry, the same entry
    a single process would write."""
    from ipta.devices import pick_device
    from ipta.sae.train import train_sae

    alpha = cfg.alpha if alpha is None else alpha
    k = cfg.k if k is None else k
    kind = mechanism(variant)
    untrained = new_sae(cfg, variant, seed, store.d_model, alpha=alpha, k=k)
    train, val_ND = data_split(cfg, store)
    spec = {**call_spec(train_run, locals(), ignore=("progress",),
                        replace={"cfg": cfg.cache_spec(exclude=SWEEP_FIELDS + VERDICT_FIELDS),
                                 "store": store.directory.name, "alpha": alpha, "k": k}),
            "sae": untrained.config}
    code = ("ipta.sae.runs",)
    ckpt = cache_root() / "sae_checkpoints" / entry_dir("sae_run", spec, code).name

    rank, world_size = distributed_world()
    calib_ND = calibration_sample(train, seed) if kind.calibrates(cfg) else None

    def evaluate(sae, full: bool = True) -> dict[str, Any]:
        """Every reading (the final evaluation), or those ``cfg.curve_readings`` asks of a
        validation point: the readings no figure draws over training were a third of each
        validation point's time (over half for the adapter's dense codes: Spearman's ranks)."""
        readings = tuple(metrics.METRIC_VARIANTS) if full else ("paper",)
        with _calibrated(sae, calib_ND) if calib_ND is not None else contextlib.nullcontext():
            return metrics.evaluate(sae, val_ND, concepts.reps_ND, concepts.logits_NK,
                                    cfg.pcc_threshold, concepts.heldout if full else None,
                                    readings)

    curves_full = cfg.curve_readings == "all"

    def build(tmp: Path) -> None:
        sae = untrained.to(pick_device(cfg.device))
        history = train_sae(
            sae, train, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
            warmup_steps=cfg.warmup_steps, seed=seed, dead_after_tokens=cfg.dead_after_tokens,
            **kind.training(cfg),
            evaluate=lambda s: _brief(evaluate(s, curves_full)), eval_every=cfg.eval_every,
            checkpoint_dir=ckpt, checkpoint_every=cfg.checkpoint_every, progress=progress)
        if rank != 0:
            return
        final = evaluate(sae)
        if calib_ND is not None:  # the saved SAE infers as it was evaluated
            calibrate(sae, calib_ND)
        sae.save(tmp / "sae")
        (tmp / "result.json").write_text(json.dumps({"history": history, "final": final}))

    fill = get_or_build_dir_collective if world_size > 1 else get_or_build_dir
    path = fill("sae_run", spec, build, code=code)
    if rank == 0:
        shutil.rmtree(ckpt, ignore_errors=True)
    saved = json.loads((path / "result.json").read_text())
    return Run(variant, seed, alpha, k, saved["history"], saved["final"], path)


Task = tuple[str, int, "float | None", "int | None"]
"""One run to train: (variant, seed, alpha, k); None takes ``cfg``'s value."""


def train_all(cfg: Config, store, concepts: ConceptData, progress: bool = True
              ) -> tuple[list[Run], list[Run], list[Run]]:
    """The chapter's trained SAEs: ``main`` (each variant at its own L0), ``matched`` (the
    variants whose sparsity is ``k``, retrained with k = the structured SAE's L0 on held-out
    tokens) and ``ablation`` (each reading of the structured SAE at each alpha; alpha = 0 is
    the variant it reduces to). The runs that do not wait on another are trained together
    (:func:`train_many`), then the matched ones. Under torchrun (``ipta train-sae``) every
    process trains each of them together."""
    main_tasks = [(v, seed, None, None) for seed in cfg.seeds for v in cfg.variants]
    slots: list[tuple[str, Task, float]] = []  # ablation: ("main" | "own", task, alpha)
    for seed in cfg.seeds:
        for a in cfg.alphas:
            for reading in cfg.ablation_readings:
                base = mechanism(reading).without_alpha if a == 0 else reading
                if a == 0 and any(t[:2] == (base, seed) for _, t, _ in slots):
                    continue  # every reading reduces to the same run at alpha = 0
                if base in cfg.variants and (a == 0 or a == cfg.alpha):
                    slots.append(("main", (base, seed, None, None), a))
                else:
                    slots.append(("own", (base, seed, a, None), a))
    own = [t for where, t, _ in slots if where == "own"]
    trained = train_many(cfg, main_tasks + own, store, concepts, progress)
    main_runs, own_runs = trained[:len(main_tasks)], dict(zip(own, trained[len(main_tasks):]))
    by_task = dict(zip(main_tasks, main_runs))
    ablation = [dataclasses.replace(by_task[t], alpha=a) if where == "main" else own_runs[t]
                for where, t, a in slots]
    matched_tasks = []
    if cfg.matched_l0 and "structured" in cfg.variants:
        for seed in cfg.seeds:
            target = max(1, round(by_task[("structured", seed, None, None)].final["val_l0"]))
            matched_tasks += [(v, seed, None, target) for v in cfg.variants
                              if mechanism(v).uses_k]
    matched = train_many(cfg, matched_tasks, store, concepts, progress)
    return main_runs, matched, ablation


def training_workers(cfg: Config) -> int:
    """How many runs :func:`train_many` trains at once: one per core on a CPU (each on one
    thread: two single-threaded runs side by side took 0.79x the time of the same two one after
    the other on two threads, on the 2-core machine), one on a GPU or under torchrun, and one
    when a variant is registered outside this package (a class defined in a notebook or a test
    exists only in the process that defined it)."""
    from ipta.devices import pick_device
    from ipta.parallel import cores

    if distributed_world()[1] > 1 or pick_device(cfg.device).type != "cpu":
        return 1
    if any(not mechanism(v).__module__.startswith("ipta.") for v in cfg.variants):
        return 1
    return cores()


def train_many(cfg: Config, tasks: list[Task], store, concepts: ConceptData,
               progress: bool = True) -> list[Run]:
    """:func:`train_run` of every task, in order: over :func:`training_workers` processes,
    or here one after the other."""
    from ipta.parallel import parallel_map, task_environment
    from ipta.progress import bar

    workers = min(training_workers(cfg), len(tasks))
    if workers <= 1:
        return [train_run(cfg, v, seed, store, concepts, alpha=a, k=k, progress=progress)
                for v, seed, a, k in tasks]
    env = task_environment()
    runs = parallel_map(_train_in_worker, [(env, cfg, store, concepts, *t) for t in tasks],
                        jobs=workers)
    return list(bar(runs, total=len(tasks), desc=f"SAE runs ({workers} at once)",
                    disable=not progress))


def _train_in_worker(task: tuple) -> Run:
    """One run in a worker process, on one thread. The store travels as its folder, the
    caller's ``IPTA_*`` variables with the task (:func:`ipta.parallel.task_environment`)."""
    import torch

    from ipta.parallel import adopt_environment

    torch.set_num_threads(1)
    env, cfg, store, concepts, variant, seed, alpha, k = task
    adopt_environment(env)
    return train_run(cfg, variant, seed, store, concepts, alpha=alpha, k=k, progress=False)


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """An evaluation without the per-concept lists (kept only at the end)."""
    return {k: v for k, v in row.items() if not k.endswith("_K")}

"""The SAE chapter's experiment: four variants, the concept metric, matched L0 and the alpha
ablation (paper section 5, appendix H; Table 2, Figures 4b, 6 and 7).

:class:`SAEConfig` holds every parameter; :func:`run_experiment` trains (or reads from the
cache) every run the chapter needs and returns :class:`RunResult` objects that the notebook
turns into tables and figures with the helpers at the bottom of this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ipta import sae_metrics as metrics
from ipta.cache import cache_root, entry_dir, get_or_build_dir
from ipta.config import Config, ConfigError, param

VARIANTS = ("topk", "batchtopk", "panneal", "structured")
TRAINING_REVISION = 2
"""Part of every run's cache spec; bump it when a change to ipta.sae or ipta.sae_train changes
trained weights beyond rounding (2: p-annealing rescaled its coefficient at every step after
the first change of p, a float32-versus-float comparison; fixed)."""
VARIANT_LABELS = {"topk": "top-k", "batchtopk": "batch-top-k", "panneal": "p-annealing",
                  "structured": "structured"}

PAPER_TABLE2 = {  # Liu et al. (2026), appendix H.3, Table 2: top-k, batch-top-k, p-anneal, ours
    "3psg_ved": (0.432, 0.332, 0.680, 0.691), "adj_adj_+_ly": (0.379, 0.396, 0.794, 0.833),
    "adj_comparative": (0.425, 0.334, 0.592, 0.727),
    "adj_superlative": (0.321, 0.302, 0.772, 0.746),
    "adj_un_+_adj": (0.534, 0.472, 0.741, 0.732), "country_capital": (0.205, 0.165, 0.495, 0.540),
    "english_french": (0.291, 0.265, 0.666, 0.649), "french_german": (0.264, 0.226, 0.550, 0.607),
    "french_spanish": (0.389, 0.264, 0.560, 0.561),
    "frequent_infrequent": (0.262, 0.255, 0.472, 0.554),
    "german_spanish": (0.250, 0.251, 0.667, 0.701), "lower_upper": (0.204, 0.293, 0.531, 0.543),
    "male_female": (0.413, 0.312, 0.532, 0.544), "noun_plural": (0.357, 0.346, 0.636, 0.650),
    "pronoun_possessive": (0.725, 0.779, 0.998, 0.991),
    "small_big": (0.327, 0.225, 0.506, 0.547), "thing_color": (0.588, 0.574, 0.895, 0.880),
    "thing_part": (0.240, 0.207, 0.400, 0.453), "verb_3psg": (0.312, 0.268, 0.622, 0.617),
    "verb_v_+_able": (0.458, 0.361, 0.763, 0.806), "verb_v_+_er": (0.318, 0.363, 0.609, 0.666),
    "verb_v_+_ment": (0.407, 0.288, 0.623, 0.674), "verb_v_+_tion": (0.429, 0.357, 0.653, 0.706),
    "verb_ved": (0.371, 0.333, 0.573, 0.656), "verb_ving": (0.369, 0.485, 0.612, 0.728),
    "ving_3psg": (0.286, 0.233, 0.646, 0.711), "ving_ved": (0.304, 0.245, 0.627, 0.682),
}
PAPER_MEAN = (0.365, 0.331, 0.638, 0.674)
PAPER_COVERAGE = (0.107, 0.071, 0.893, 0.964)


def paper_name(concept: str) -> str:
    """Our concept name ('verb-V+able') as the paper's table spells it ('verb_v_+_able')."""
    return concept.lower().replace("-", "_").replace("+", "_+_")


@dataclasses.dataclass(frozen=True)
class SAEConfig(Config):
    """Parameters of the SAE chapter (defaults = the ``default`` profile, CPU-sized)."""

    model: str = param("smollm2-135m", "causal LM whose activations the SAEs learn (short name, "
                       "HF id or folder)")
    revision: str | None = param(None, "hub revision of the model")
    corpus: str = param("gensim", "'gensim' (offline Wikipedia + Lee news) or "
                        "'hf:DATASET[:CONFIG]'")
    n_tokens: int = param(60_000, "activation rows extracted from the corpus", low=256)
    val_tokens: int = param(4096, "last rows held out for validation", low=64)
    context_length: int = param(128, "tokens per window fed to the model", low=8)
    max_windows_per_doc: int = param(4, "windows kept per document (0 = all)", low=0)
    layer: int = param(-1, "index into hidden_states (-1 = after the final norm, the paper's)")
    act_dtype: Literal["float16", "float32"] = param("float16", "dtype of the stored activations")
    extract_batch: int = param(16, "windows per forward pass during extraction", low=1)
    device: str = param("auto", "device for the model and the SAEs (auto, cpu, cuda, mps)")
    variants: tuple[str, ...] = param(VARIANTS, "SAE variants to train", choices=VARIANTS)
    seeds: tuple[int, ...] = param((0,), "seeds (SAE init, batch order, svd_lowrank)")
    n_features: int = param(1024, "dictionary size F (paper's value lost)", low=27)
    k: int = param(32, "active features per token of top-k / batch-top-k (paper's value lost)",
                   low=1)
    steps: int = param(500, "optimiser steps (paper: 20,000)", low=2)
    batch_size: int = param(256, "activations per step (paper: 10,000)", low=2)
    lr: float = param(5e-4, "Adam learning rate after warm-up (paper's value lost)", low=0)
    warmup_steps: int = param(200, "linear learning-rate warm-up (paper: 200)", low=0)
    # Chosen by sparsity alone, so that "each variant at its own L0" compares like with like:
    # p-annealing's held-out L0 should sit near top-k's k. On the default run (SmolLM2, F=1024,
    # 500 steps) lambda_0 = 1, 3, 10 gave L0 = 158, 28, 4.
    initial_penalty: float = param(3.0, "p-annealing's starting sparsity coefficient lambda_0 "
                                   "(paper's value lost; ours puts L0 near k)", low=0)
    sparsity_warmup_steps: int = param(100, "steps over which the sparsity penalty ramps up "
                                       "(paper: 400)", low=0)
    anneal_start: float = param(0.5, "fraction of the steps after which p starts to fall",
                                low=0, high=1)
    p_end: float = param(0.0, "p is annealed from 1 towards this (never reached)", low=0, high=1)
    n_p_updates: int = param(10, "how many times p steps down", low=1)
    alpha: float = param(0.1, "weight of the nuclear-norm term (paper's value lost)", low=0)
    rank: int = param(16, "top-r singular values estimating the nuclear norm", low=1)
    alphas: tuple[float, ...] = param((0.0, 0.03, 0.1, 0.3), "alpha values of the ablation "
                                      "(Figure 7; 0 = plain p-annealing)", low=0)
    matched_l0: bool = param(True, "retrain top-k and batch-top-k with k = structured SAE's L0")
    eval_every: int = param(50, "steps between validation points (Figures 6, 7)", low=1)
    checkpoint_every: int = param(250, "steps between checkpoints (0 = none)", low=0)
    dead_after_tokens: int = param(100_000, "a feature silent this many training tokens is dead",
                                   low=1)
    concept_source: Literal["auto", "paper", "embedded"] = param(
        "auto", "word pairs: the paper's files (auto: if available) or our embedded set")
    word_pairs_dir: str | None = param(None, "folder of the paper's 27 word-pair files")
    max_pairs_per_concept: int = param(0, "pairs used per concept (0 = all)", low=0)
    probe_C: float = param(1e-4, "inverse L2 strength of the concept probes (authors': 1e-4)",
                           low=1e-8)
    pcc_threshold: float = param(0.5, "coverage counts concepts with PCC above this", low=-1,
                                 high=1)

    PROFILES = {
        "smoke": {"n_tokens": 3000, "val_tokens": 512, "context_length": 64,
                  "max_windows_per_doc": 1, "n_features": 128, "k": 8, "steps": 40,
                  "batch_size": 64, "warmup_steps": 10, "sparsity_warmup_steps": 10,
                  "alphas": (0.0, 0.1), "eval_every": 10, "checkpoint_every": 20,
                  "max_pairs_per_concept": 4, "dead_after_tokens": 1000},
        "paper": {"model": "EleutherAI/pythia-70m", "corpus": "hf:monology/pile-uncopyrighted",
                  "n_tokens": 20_000_000, "val_tokens": 100_000, "context_length": 1024,
                  "max_windows_per_doc": 0, "extract_batch": 32, "n_features": 16384,
                  "k": 64, "steps": 20_000, "batch_size": 10_000, "lr": 1e-4,
                  "sparsity_warmup_steps": 400, "eval_every": 1000, "checkpoint_every": 1000,
                  "dead_after_tokens": 10_000_000, "alphas": (0.0, 0.01, 0.1, 1.0)},
    }

    def validate(self) -> None:
        if self.val_tokens >= self.n_tokens:
            raise ConfigError(f"parameter 'val_tokens' ({self.val_tokens}) must be smaller than "
                              f"'n_tokens' ({self.n_tokens})")
        if self.k > self.n_features:
            raise ConfigError(f"parameter 'k' ({self.k}) exceeds 'n_features' ({self.n_features})")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"parameter 'warmup_steps' ({self.warmup_steps}) must be below "
                              f"'steps' ({self.steps})")
        if self.rank > min(self.batch_size, self.n_features):
            raise ConfigError(f"parameter 'rank' ({self.rank}) exceeds min(batch_size, n_features)")


@dataclass
class ConceptData:
    """Pair representations with their probe logits, the inputs of the H.2 metric."""

    names: tuple[str, ...]
    source: str
    reps_ND: np.ndarray
    logits_NK: np.ndarray
    concept_N: np.ndarray
    label_N: np.ndarray


@dataclass
class RunResult:
    """One trained SAE, its history over steps and its final evaluation."""

    variant: str
    seed: int
    alpha: float
    k: int
    history: list[dict[str, Any]]
    final: dict[str, Any]
    directory: Path

    def sae(self):
        from ipta.sae import load_sae

        return load_sae(self.directory / "sae")


# ----------------------------------------------------------------------------- inputs
def activations(cfg: SAEConfig, progress: bool = True):
    """The cached activation store of ``cfg`` (built on first use)."""
    from ipta.corpus import cached_activations

    return cached_activations(cfg.model, cfg.corpus, n_tokens=cfg.n_tokens,
                              revision=cfg.revision, layer=cfg.layer,
                              context_length=cfg.context_length, batch_size=cfg.extract_batch,
                              dtype=cfg.act_dtype, max_windows_per_doc=cfg.max_windows_per_doc,
                              device=cfg.device, progress=progress)


def concept_data(cfg: SAEConfig, progress: bool = True) -> ConceptData:
    """Word-pair representations at ``cfg.layer`` and every concept probe's logits on all of them.

    Each concept's probe (base = 1, target = 0) is fitted on its own pairs; its logits are then
    taken on every word of every concept, so the K logit columns and the F feature columns
    share the same N rows, as eq. (93)-(95) stack them.
    """
    from ipta.activations import cached_word_representations
    from ipta.concepts import load_concept_set, paper_set_available

    source = cfg.concept_source
    if source == "auto":
        source = "paper" if paper_set_available(cfg.word_pairs_dir) else "embedded"
    cs = load_concept_set(source, cfg.word_pairs_dir)
    words, concept_N, label_N = [], [], []
    for k, name in enumerate(cs.names):
        pairs = cs.pairs[name][:cfg.max_pairs_per_concept or None]
        for base, target in pairs:
            words += [base, target]
            concept_N += [k, k]
            label_N += [1, 0]
    reps_ND = cached_word_representations(cfg.model, words, revision=cfg.revision,
                                          layer=cfg.layer, device=cfg.device, progress=progress)
    concept_N, label_N = np.array(concept_N), np.array(label_N)
    coef_KD, b_K = metrics.fit_concept_probes(reps_ND, label_N, concept_N, len(cs.names),
                                              C=cfg.probe_C)
    return ConceptData(cs.names, cs.source, reps_ND, reps_ND @ coef_KD.T + b_K, concept_N,
                       label_N)


# --------------------------------------------------------------------------- evaluation
def evaluate(sae, val_ND: np.ndarray, concepts: ConceptData, threshold: float = 0.5
             ) -> dict[str, Any]:
    """Reconstruction and sparsity on held-out tokens and on the pair words; the H.2 metric."""
    import torch

    device = sae.W_dec_FD.device
    out: dict[str, Any] = {}
    with torch.no_grad():
        for name, x_ND in (("val", val_ND), ("pairs", concepts.reps_ND)):
            codes = sae.encode(torch.as_tensor(x_ND, dtype=torch.float32, device=device))
            xhat = sae.decode(codes).cpu().numpy()
            codes = codes.cpu().numpy()
            out.update({f"{name}_mse": metrics.mse(x_ND, xhat),
                        f"{name}_fvu": metrics.fvu(x_ND, xhat),
                        f"{name}_l0": metrics.l0(codes),
                        f"{name}_dead": metrics.dead_fraction(codes)})
    match = metrics.concept_match(concepts.logits_NK, codes, threshold)
    out.update(mean_pcc=match.mean_pcc, coverage=match.coverage, pcc_K=match.pcc_K.tolist(),
               feature_K=match.feature_K.tolist())
    return out


# ------------------------------------------------------------------------------ training
def mechanism_hparams(cfg: SAEConfig, variant: str, seed: int, alpha: float, k: int
                      ) -> dict[str, Any]:
    """The registry entry's hyperparameters for ``variant`` under ``cfg``."""
    anneal = {"initial_penalty": cfg.initial_penalty, "p_start": 1.0, "p_end": cfg.p_end,
              "anneal_start": int(cfg.anneal_start * cfg.steps), "anneal_end": cfg.steps - 1,
              "n_updates": cfg.n_p_updates, "sparsity_warmup": cfg.sparsity_warmup_steps}
    return {"topk": {"k": k}, "batchtopk": {"k": k},
            "panneal": anneal,
            "structured": {**anneal, "alpha": alpha, "rank": cfg.rank, "seed": seed}}[variant]


def train_run(cfg: SAEConfig, variant: str, seed: int, store, concepts: ConceptData, *,
              alpha: float | None = None, k: int | None = None, progress: bool = True
              ) -> RunResult:
    """Train one SAE (or read it from the cache); checkpoints let a killed run resume."""
    from ipta.devices import pick_device
    from ipta.sae import SparseAutoencoder
    from ipta.sae_train import train_sae

    alpha = cfg.alpha if alpha is None else alpha
    k = cfg.k if k is None else k
    hp = mechanism_hparams(cfg, variant, seed, alpha, k)
    train = store.split(0, store.n_tokens - cfg.val_tokens)
    val_ND = store.split(store.n_tokens - cfg.val_tokens, store.n_tokens).all()
    spec = {"activations": store.directory.name, "concepts": concepts.source,
            "pairs_checksum": hashlib.sha256(concepts.reps_ND.tobytes()).hexdigest()[:16],
            "variant": variant, "seed": seed, "revision": TRAINING_REVISION,
            "hparams": hp, "train": {f: getattr(cfg, f) for f in (
                "n_features", "steps", "batch_size", "lr", "warmup_steps", "val_tokens",
                "eval_every", "dead_after_tokens", "probe_C", "pcc_threshold")}}
    ckpt = cache_root() / "sae_checkpoints" / entry_dir("sae_run", spec).name

    def build(tmp: Path) -> None:
        device = pick_device(cfg.device)
        sae = SparseAutoencoder(store.d_model, cfg.n_features, variant, hp, seed=seed).to(device)
        history = train_sae(
            sae, train, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
            warmup_steps=cfg.warmup_steps, seed=seed, dead_after_tokens=cfg.dead_after_tokens,
            evaluate=lambda s: _brief(evaluate(s, val_ND, concepts, cfg.pcc_threshold)),
            eval_every=cfg.eval_every, checkpoint_dir=ckpt,
            checkpoint_every=cfg.checkpoint_every, progress=progress)
        sae.save(tmp / "sae")
        final = evaluate(sae, val_ND, concepts, cfg.pcc_threshold)
        (tmp / "result.json").write_text(json.dumps({"history": history, "final": final}))

    path = get_or_build_dir("sae_run", spec, build)
    shutil.rmtree(ckpt, ignore_errors=True)
    saved = json.loads((path / "result.json").read_text())
    return RunResult(variant, seed, alpha, k, saved["history"], saved["final"], path)


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    """An evaluation without the per-concept lists (kept only at the end)."""
    return {k: v for k, v in row.items() if not k.endswith("_K")}


def run_experiment(cfg: SAEConfig, progress: bool = True) -> dict[str, list[RunResult]]:
    """Every run of the chapter: ``main`` (each variant at its own L0), ``matched`` (top-k and
    batch-top-k with k = the structured SAE's L0 on held-out tokens) and ``ablation`` (alphas)."""
    store = activations(cfg, progress)
    concepts = concept_data(cfg, progress)
    out: dict[str, list[RunResult]] = {"main": [], "matched": [], "ablation": []}
    for seed in cfg.seeds:
        main = {v: train_run(cfg, v, seed, store, concepts, progress=progress)
                for v in cfg.variants}
        out["main"] += main.values()
        if cfg.matched_l0 and "structured" in main:
            target = max(1, round(main["structured"].final["val_l0"]))
            out["matched"] += [train_run(cfg, v, seed, store, concepts, k=target,
                                         progress=progress)
                               for v in ("topk", "batchtopk") if v in cfg.variants]
        for a in cfg.alphas:
            out["ablation"].append(
                dataclasses.replace(main["panneal"], alpha=0.0) if a == 0 and "panneal" in main else
                main["structured"] if a == cfg.alpha and "structured" in main else
                train_run(cfg, "structured", seed, store, concepts, alpha=a, progress=progress))
    out["concepts"] = concepts  # type: ignore[assignment]
    return out


# ------------------------------------------------------------------- tables and figures
def summary_table(runs: list[RunResult]):
    """One row per run: variant, seed, k/alpha, and the final metrics (Table 2's right side)."""
    import pandas as pd

    rows = [{"variant": VARIANT_LABELS[r.variant], "seed": r.seed,
             "k": r.k if r.variant in ("topk", "batchtopk") else None,
             "alpha": r.alpha if r.variant == "structured" else None,
             **{m: r.final[m] for m in ("mean_pcc", "coverage", "val_mse", "val_fvu", "val_l0",
                                        "val_dead", "pairs_mse", "pairs_l0")}}
            for r in runs]
    return pd.DataFrame(rows)


def table2(runs: list[RunResult], concepts: ConceptData):
    """Per-concept assigned PCC of each variant (mean over seeds) next to the paper's Table 2."""
    import pandas as pd

    cols = {}
    for i, v in enumerate(VARIANTS):
        mine = [r.final["pcc_K"] for r in runs if r.variant == v]
        if mine:
            cols[f"ours {VARIANT_LABELS[v]}"] = np.mean(mine, 0)
        cols[f"paper {VARIANT_LABELS[v]}"] = [PAPER_TABLE2[paper_name(n)][i]
                                              for n in concepts.names]
    table = pd.DataFrame(cols, index=list(concepts.names))
    table.loc["mean PCC"] = table.mean()
    for c in table.columns:
        if c.startswith("paper"):
            table.loc["mean PCC", c] = PAPER_MEAN[VARIANTS.index(_variant_of(c))]
    table.loc["coverage@0.5 (27 rows)"] = (table.iloc[:27] > 0.5).mean()
    return table


def _variant_of(column: str) -> str:
    label = column.split(" ", 1)[1]
    return next(v for v, lab in VARIANT_LABELS.items() if lab == label)


def plot_curves(runs: list[RunResult], metrics_: tuple[str, ...], label, title: str):
    """Metric trajectories over training steps, one line per run (Figures 6 and 7)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics_), figsize=(4.2 * len(metrics_), 3.4))
    for ax, m in zip(np.atleast_1d(axes), metrics_):
        for r in runs:
            steps = [h["step"] for h in r.history]
            ax.plot(steps, [h[m] for h in r.history], marker=".", label=label(r))
        ax.set_xlabel("training step")
        ax.set_ylabel(m)
        if m.endswith("mse"):
            ax.set_yscale("log")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_final_mse(main: list[RunResult], matched: list[RunResult]):
    """Figure 4b: reconstruction MSE on the pair words (the paper's measure) per variant."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    bars = [(f"{VARIANT_LABELS[r.variant]}\nown L0 ({r.final['val_l0']:.0f})",
             r.final["pairs_mse"]) for r in main if r.seed == main[0].seed]
    bars += [(f"{VARIANT_LABELS[r.variant]}\nk={r.k}", r.final["pairs_mse"])
             for r in matched if r.seed == main[0].seed]
    ax.bar([b[0] for b in bars], [b[1] for b in bars],
           color=["C0", "C1", "C2", "C3"][:len(main)] + ["C5"] * len(matched))
    ax.set_ylabel("MSE on the word-pair representations")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig

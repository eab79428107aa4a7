"""The SAE chapter (notebook ``04_sae``): four variants, the concept metric, matched L0 and the
alpha ablation (paper section 5, appendix H; Table 2, Figures 4b, 6 and 7).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``) and figures (``figure_*``). Training and evaluation
live in :mod:`ipta.sae.runs`, the autoencoder in :mod:`ipta.sae.model`, the metrics in
:mod:`ipta.sae.metrics`.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from ipta.config import Config as BaseConfig
from ipta.config import ConfigError, param
from ipta.notebook import setup_for
from ipta.sae import metrics
from ipta.sae.runs import ConceptData, Run, activations, concept_data, train_run

VARIANTS = ("topk", "batchtopk", "panneal", "structured")
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
class Config(BaseConfig):
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
    extract_batch: int = param(16, "windows per forward pass during extraction", low=1,
                               affects_results=False)
    device: str = param("auto", "device for the model and the SAEs (auto, cpu, cuda, mps)",
                        affects_results=False)
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
    checkpoint_every: int = param(250, "steps between checkpoints (0 = none)", low=0,
                                  affects_results=False)  # resume is bit-exact
    dead_after_tokens: int = param(100_000, "a feature silent this many training tokens is dead",
                                   low=1)
    concept_source: Literal["auto", "paper", "embedded"] = param(
        "auto", "word pairs: the paper's files (auto: if available) or our embedded set")
    word_pairs_dir: str | None = param(None, "folder of the paper's 27 word-pair files",
                                       affects_results=False)  # the pairs' data is keyed
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


setup = setup_for(Config)
"""``setup(profile, params)``: the chapter's validated settings, shown as the page's first output."""


@dataclasses.dataclass(frozen=True)
class Result:
    """Every run of the chapter and the concept data they were judged on."""

    main: list[Run]
    """Each variant at its own sparsity, every seed."""
    matched: list[Run]
    """Top-k and batch-top-k retrained with k = the structured SAE's held-out L0."""
    ablation: list[Run]
    """The structured SAE at each alpha of ``cfg.alphas`` (alpha = 0 is p-annealing)."""
    concepts: ConceptData
    threshold: float
    """The PCC above which a concept counts as covered (``cfg.pcc_threshold``)."""

    def describe(self) -> str:
        c = self.concepts
        return f"{len(c.names)} concepts, {len(c.reps_ND)} words, pairs from: {c.source}"


def run(cfg: Config, progress: bool = True) -> Result:
    """Every run of the chapter: ``main`` (each variant at its own L0), ``matched`` (top-k and
    batch-top-k with k = the structured SAE's L0 on held-out tokens) and ``ablation`` (alphas).
    Each run is cached on its own (see :mod:`ipta.sae.runs`); the model is loaded at most once."""
    from ipta.lm.models import LazyModel

    model = LazyModel(cfg.model, revision=cfg.revision, device=cfg.device)  # loaded at most once
    store = activations(cfg, progress, loaded=model)
    concepts = concept_data(cfg, progress, loaded=model)
    del model
    main_runs: list[Run] = []
    matched: list[Run] = []
    ablation: list[Run] = []
    for seed in cfg.seeds:
        main = {v: train_run(cfg, v, seed, store, concepts, progress=progress)
                for v in cfg.variants}
        main_runs += main.values()
        if cfg.matched_l0 and "structured" in main:
            target = max(1, round(main["structured"].final["val_l0"]))
            matched += [train_run(cfg, v, seed, store, concepts, k=target, progress=progress)
                        for v in ("topk", "batchtopk") if v in cfg.variants]
        for a in cfg.alphas:
            ablation.append(
                dataclasses.replace(main["panneal"], alpha=0.0) if a == 0 and "panneal" in main else
                main["structured"] if a == cfg.alpha and "structured" in main else
                train_run(cfg, "structured", seed, store, concepts, alpha=a, progress=progress))
    return Result(main_runs, matched, ablation, concepts, cfg.pcc_threshold)


def paper_rows_check() -> str:
    """How many rows the paper's coverage@0.5 values imply, and the counts of concepts above 0.5
    without and with the table's average row counted as one more concept."""
    labels, n = [VARIANT_LABELS[v] for v in VARIANTS], len(PAPER_TABLE2)
    implied = metrics.coverage_implied_rows(dict(zip(labels, PAPER_COVERAGE)))
    lines = [f"row counts consistent with the paper's coverages (n <= 40): {list(implied)}"]
    for j, name in enumerate(labels):
        column = [row[j] for row in PAPER_TABLE2.values()]
        lines.append(f"{name:12s} concepts > 0.5: {metrics.count_above(column)}/{n}, "
                     f"with the average row: "
                     f"{metrics.count_above(column + [PAPER_MEAN[j]])}/{n + 1}")
    return "\n".join(lines)


def reading_runs(res: Result) -> str:
    """One line per main and matched run, and the paper's two numbers per variant."""
    lines = []
    for r in res.main + res.matched:
        f = r.final
        lines.append(f"{VARIANT_LABELS[r.variant]:12s} k={r.k:<4d} seed={r.seed}  "
                     f"mean PCC {f['mean_pcc']:.3f}  coverage {f['coverage']:.1%}  "
                     f"val MSE {f['val_mse']:.4g}  FVU {f['val_fvu']:.3f}  "
                     f"L0 {f['val_l0']:.1f}  dead {f['val_dead']:.1%}")
    lines.append(f"paper (mean PCC / coverage): "
                 f"{dict(zip([VARIANT_LABELS[v] for v in VARIANTS], zip(PAPER_MEAN, PAPER_COVERAGE)))}")
    return "\n".join(lines)


# ----------------------------------------------------------------------- tables and figures
def table_summary(runs: list[Run]):
    """One row per run: variant, seed, k/alpha, and the final metrics (Table 2's right side)."""
    import pandas as pd

    rows = [{"variant": VARIANT_LABELS[r.variant], "seed": r.seed,
             "k": r.k if r.variant in ("topk", "batchtopk") else None,
             "alpha": r.alpha if r.variant == "structured" else None,
             **{m: r.final[m] for m in ("mean_pcc", "coverage", "val_mse", "val_fvu", "val_l0",
                                        "val_dead", "pairs_mse", "pairs_l0")}}
            for r in runs]
    return pd.DataFrame(rows)


def table_2(res: Result):
    """Per-concept assigned PCC of each variant (mean over seeds) next to the paper's Table 2."""
    import pandas as pd

    runs, concepts, n = res.main, res.concepts, len(res.concepts.names)
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
    table.loc[f"coverage@{res.threshold:g} ({n} rows)"] = (table.iloc[:n] > res.threshold).mean()
    return table


def _variant_of(column: str) -> str:
    label = column.split(" ", 1)[1]
    return next(v for v, lab in VARIANT_LABELS.items() if lab == label)


def figure_curves(runs: list[Run], metrics_: tuple[str, ...], label, title: str):
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


def figure_final_mse(res: Result):
    """Figure 4b: reconstruction MSE on the pair words (the paper's measure) per variant."""
    import matplotlib.pyplot as plt

    main, matched = res.main, res.matched
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

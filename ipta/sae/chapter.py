"""The SAE chapter (notebook ``04_sae``): four variants, the concept metric, matched L0 and the
alpha ablation (paper section 5, appendix H; Table 2, Figures 4b, 6 and 7).

Like every chapter module: :class:`Config`, :func:`setup`, :func:`run` returning a
:class:`Result`, then tables (``table_*``) and figures (``figure_*``). Training and evaluation
live in :mod:`ipta.sae.runs`, the autoencoder in :mod:`ipta.sae.model`, the metrics in
:mod:`ipta.sae.metrics`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ipta.config import Config as BaseConfig
from ipta.config import SEED_HIGH, ConfigError, param
from ipta.devices import DEVICE_HELP, device_problem
from ipta.figures import PAGE_WIDTH, glue_figure, page_style  # noqa: F401 (notebook: chapter.glue_figure)
from ipta.notebook import glue_values, setup_for
from ipta.sae import metrics
from ipta.sae.controls import CONTROL_LABELS, CONTROLS, controls
from ipta.sae.export import record_runs, run_name
from ipta.sae.runs import ConceptData, Run, activations, concept_data, train_run

VARIANTS = ("topk", "batchtopk", "panneal", "structured")
VARIANT_LABELS = {"topk": "top-k", "batchtopk": "batch-top-k", "panneal": "p-annealing",
                  "structured": "structured", "adapter": "structured (adapter)"}
READINGS = ("structured", "adapter")
"""The two readings of the structured SAE (nuclear-norm penalty; adapter branch) that the alpha
ablation runs."""

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
    n_tokens: int = param(60_000, "activation rows extracted from the corpus", low=256,
                          limit=100_000_000)
    val_tokens: int = param(4096, "last rows held out for validation", low=64,
                            limit=10_000_000)
    context_length: int = param(128, "tokens per window fed to the model", low=8,
                                limit=32_768)
    max_windows_per_doc: int = param(4, "windows kept per document (0 = all)", low=0,
                                     limit=100_000)
    layer: int = param(-1, "index into hidden_states (-1 = after the final norm, the paper's)",
                       low=-1024, high=1024)
    act_dtype: Literal["float16", "float32"] = param("float16", "dtype of the stored activations")
    extract_batch: int = param(16, "windows per forward pass during extraction", low=1,
                               limit=4096, affects_results=False)
    device: str = param("auto", f"device for the model and the SAEs: {DEVICE_HELP}",
                        check=device_problem, affects_results=False)
    variants: tuple[str, ...] = param(VARIANTS, "SAE variants to train", choices=VARIANTS)
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds (SAE init, batch order, svd_lowrank); "
                                   "tables give mean and spread over them", low=0,
                                   high=SEED_HIGH)
    n_features: int = param(1024, "dictionary size F (paper's value lost)", low=27,
                            limit=1 << 20)
    k: int = param(32, "active features per token of top-k / batch-top-k (paper's value lost)",
                   low=1, limit=4096)
    batchtopk_threshold: Literal["calibrated", "moving_average"] = param(
        "calibrated", "batch-top-k's inference threshold: set after training so that inference "
        "keeps k per token on training activations, or the moving average learned in training "
        "(beta 0.999 from step 0; after a short run far from its limit)")
    auxk_alpha: float = param(1 / 32, "weight of top-k's and batch-top-k's AuxK dead-latent "
                              "loss (the reference trainers' 1/32; 0 = off)", low=0,
                              high=100)
    k_aux: int = param(512, "dead features AuxK may use per token (reference: d_model / 2)",
                       low=1, limit=1 << 20)
    b_pre_init: Literal["geometric_median", "mean"] = param(
        "geometric_median", "top-k and batch-top-k's initial pre-encoder bias: the geometric "
        "median of a training sample (their reference trainers') or its mean (p-annealing and "
        "structured always start at the mean)")
    grad_clip: float = param(1.0, "top-k and batch-top-k clip the gradient's global norm at this "
                             "(their reference trainers: 1; 0 = off); the p-annealing family's "
                             "reference trainers do not clip, nor do ours", low=0,
                             high=1e6)
    steps: int = param(500, "optimiser steps (paper: 20,000)", low=2, limit=1_000_000)
    batch_size: int = param(256, "activations per step (paper: 10,000)", low=2,
                            limit=1_000_000)
    lr: float = param(5e-4, "Adam learning rate after warm-up (paper's value lost)",
                      low=1e-8, high=1.0)
    warmup_steps: int = param(200, "linear learning-rate warm-up (paper: 200)", low=0)
    # Chosen by sparsity alone, so that "each variant at its own L0" compares like with like:
    # p-annealing's held-out L0 should sit near top-k's k. On the default run (SmolLM2, F=1024,
    # 500 steps) lambda_0 = 1, 3, 10 gave L0 = 158, 28, 4.
    initial_penalty: float = param(3.0, "p-annealing's starting sparsity coefficient lambda_0 "
                                   "(paper's value lost; ours puts L0 near k)", low=0,
                                   high=1e4)
    sparsity_warmup_steps: int = param(100, "steps over which the sparsity penalty ramps up "
                                       "(paper: 400)", low=0)
    anneal_start: float = param(0.5, "fraction of the steps after which p starts to fall",
                                low=0, high=1)
    p_end: float = param(0.0, "p is annealed from 1 towards this (never reached)", low=0, high=1)
    n_p_updates: int = param(10, "how many times p steps down", low=1,
                             limit=10_000)
    alpha: float = param(0.1, "weight of the nuclear-norm term (paper's value lost)", low=0,
                         high=1e4)
    rank: int = param(16, "top-r singular values estimating the nuclear norm", low=1)
    alphas: tuple[float, ...] = param((0.0, 0.03, 0.1, 0.3), "alpha values of the ablation "
                                      "(Figure 7; 0 = plain p-annealing; empty = no ablation)",
                                      low=0, high=1e4, empty_ok=True)
    ablation_readings: tuple[str, ...] = param(
        READINGS, "readings of the structured SAE run in the alpha ablation: the nuclear-norm "
        "penalty on all codes, or an adapter branch whose codes carry it", choices=READINGS)
    matched_l0: bool = param(True, "retrain top-k and batch-top-k with k = structured SAE's L0")
    eval_every: int = param(50, "steps between validation points (Figures 6, 7)", low=1)
    checkpoint_every: int = param(250, "steps between checkpoints (0 = none)", low=0,
                                  affects_results=False)  # resume is bit-exact
    dead_after_tokens: int = param(100_000, "a feature silent this many training tokens is dead",
                                   low=1, limit=10**10)
    concept_source: Literal["auto", "paper", "embedded"] = param(
        "auto", "word pairs: the paper's files or our embedded set (auto: the paper's when a "
        "folder of them is named by word_pairs_dir or $IPTA_WORD_PAIRS_DIR, else embedded)")
    word_pairs_dir: str | None = param(None, "folder of the paper's 27 word-pair files",
                                       path=True, affects_results=False)  # the pairs' data is keyed
    max_pairs_per_concept: int = param(0, "pairs used per concept (0 = all)", low=0,
                                       limit=100_000)
    probe_C: float = param(1e-4, "inverse L2 strength of the concept probes (authors': 1e-4)",
                           low=1e-8, high=1e8)
    pcc_threshold: float = param(0.5, "coverage counts concepts with PCC above this", low=-1,
                                 high=1)

    PROFILES = {
        "smoke": {"seeds": (0, 1), "n_tokens": 3000, "val_tokens": 512, "context_length": 64,
                  "max_windows_per_doc": 1, "n_features": 128, "k": 8, "steps": 40,
                  "batch_size": 64, "warmup_steps": 10, "sparsity_warmup_steps": 10,
                  "alphas": (0.0, 0.1), "eval_every": 10, "checkpoint_every": 20,
                  "max_pairs_per_concept": 4, "dead_after_tokens": 1000},
        "classroom": {"n_tokens": 16_384, "val_tokens": 2048, "n_features": 512, "steps": 200,
                      "warmup_steps": 50, "sparsity_warmup_steps": 40, "seeds": (0, 1),
                      "alphas": (0.0, 0.1), "ablation_readings": ("structured",),
                      "eval_every": 50, "checkpoint_every": 100, "dead_after_tokens": 20_000},
        "paper": {"model": "EleutherAI/pythia-70m", "corpus": "hf:monology/pile-uncopyrighted",
                  "n_tokens": 20_000_000, "val_tokens": 100_000, "context_length": 1024,
                  "max_windows_per_doc": 0, "extract_batch": 32, "n_features": 16384,
                  "k": 64, "steps": 20_000, "batch_size": 10_000, "lr": 1e-4,
                  "sparsity_warmup_steps": 400, "eval_every": 1000, "checkpoint_every": 1000,
                  "dead_after_tokens": 10_000_000, "alphas": (0.0, 0.01, 0.1, 1.0)},
    }

    def validate(self) -> None:
        from ipta.lm.concepts import paper_directory_problem

        if self.concept_source != "embedded" or self.word_pairs_dir is not None:
            problem = paper_directory_problem(self.word_pairs_dir)
            if problem:
                raise ConfigError(problem)
        train_tokens = self.n_tokens - self.val_tokens
        if train_tokens < self.batch_size:
            raise ConfigError(f"parameters 'n_tokens' ({self.n_tokens}) and 'val_tokens' "
                              f"({self.val_tokens}) leave {train_tokens} training rows, fewer "
                              f"than one batch ('batch_size' {self.batch_size})")
        if self.k > self.n_features:
            raise ConfigError(f"parameter 'k' ({self.k}) exceeds 'n_features' ({self.n_features})")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"parameter 'warmup_steps' ({self.warmup_steps}) must be below "
                              f"'steps' ({self.steps})")
        if self.rank > min(self.batch_size, self.n_features):
            raise ConfigError(f"parameter 'rank' ({self.rank}) exceeds min(batch_size, n_features)")
        for name in ("sparsity_warmup_steps", "n_p_updates", "eval_every"):
            if getattr(self, name) > self.steps:
                raise ConfigError(f"parameter {name!r} ({getattr(self, name)}) exceeds 'steps' "
                                  f"({self.steps})")



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
    controls: list[Run] = dataclasses.field(default_factory=list)
    """Chance levels and the ceiling (:mod:`ipta.sae.controls`), every seed."""

    def describe(self) -> str:
        c = self.concepts
        return f"{len(c.names)} concepts, {len(c.reps_ND)} words, pairs from: {c.source}"


def run(cfg: Config, progress: bool = True) -> Result:
    """Every run of the chapter (:func:`train_all`) and its controls.
    Each run is cached on its own (see :mod:`ipta.sae.runs`); the model is loaded at most once."""
    from ipta.lm.models import LazyModel

    model = LazyModel(cfg.model, revision=cfg.revision, device=cfg.device)  # loaded at most once
    store = activations(cfg, progress, loaded=model)
    concepts = concept_data(cfg, progress, loaded=model)
    del model
    main_runs, matched, ablation = train_all(cfg, store, concepts, progress)
    res = Result(main_runs, matched, ablation, concepts, cfg.pcc_threshold,
                 controls(cfg, store, concepts))
    record_runs(run_index_rows(res, cfg))
    return res


def train_all(cfg: Config, store, concepts: ConceptData, progress: bool = True
              ) -> tuple[list[Run], list[Run], list[Run]]:
    """The trained SAEs: ``main`` (each variant at its own L0), ``matched`` (top-k and
    batch-top-k with k = the structured SAE's L0 on held-out tokens) and ``ablation`` (alphas).
    Under torchrun (``ipta train-sae``) every process trains each of them together."""
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
            if a == 0:  # both readings reduce to p-annealing
                ablation.append(dataclasses.replace(main["panneal"], alpha=0.0)
                                if "panneal" in main else
                                train_run(cfg, "panneal", seed, store, concepts, progress=progress))
                continue
            for reading in cfg.ablation_readings:
                ablation.append(
                    main[reading] if reading in main and a == cfg.alpha else
                    train_run(cfg, reading, seed, store, concepts, alpha=a, progress=progress))
    return main_runs, matched, ablation


def run_index_rows(res: Result, cfg: Config) -> list[dict[str, Any]]:
    """Each trained run by name (set, variant, seed, alpha, k, model, layer) -> its folder."""
    rows, seen = [], set()
    for group, runs in (("main", res.main), ("matched L0", res.matched), ("alpha ablation",
                                                                          res.ablation)):
        for r in runs:
            if r.directory is None or r.directory in seen:
                continue
            seen.add(r.directory)
            rows.append({"runs": group, "variant": r.variant, "seed": r.seed,
                         "alpha": r.alpha if r.variant in READINGS else None,
                         "k": r.k, "model": cfg.model, "layer": cfg.layer,
                         "folder": str(r.directory)})
    return rows


def table_runs(res: Result, cfg: Config) -> "pandas.DataFrame":
    """The trained runs by name, their cache folders and the command that exports each one."""
    import pandas as pd

    frame = pd.DataFrame(run_index_rows(res, cfg))
    frame["folder"] = [Path(f).name[:16] + "…" for f in frame["folder"]]
    frame["export"] = [f"ipta export-sae {run_name(r._asdict())} OUT" for r in frame.itertuples()]
    return frame.drop(columns=["model", "layer"])


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
def label(r: Run) -> str:
    """A run's name in tables: the variant, or the control it is."""
    if r.kind == "trained":
        return VARIANT_LABELS[r.variant]
    if r.kind == "untrained":
        return f"untrained {VARIANT_LABELS[r.variant]}"
    return CONTROL_LABELS[r.kind]


SUMMARY_METRICS = ("mean_pcc", "coverage", "mean_pcc_raw", "mean_pcc_spearman",
                   "mean_pcc_exp_std", "mean_pcc_heldout", "val_mse", "val_fvu", "val_l0", "val_dead", "pairs_mse",
                   "pairs_l0")


def table_summary(runs: list[Run]):
    """One row per run: variant, seed, k/alpha, and the final metrics (Table 2's right side)."""
    import pandas as pd

    rows = [{"variant": label(r), "seed": r.seed,
             "k": r.k if r.variant in ("topk", "batchtopk") else None,
             "alpha": r.alpha if r.variant in READINGS and r.kind == "trained" else None,
             **{m: r.final.get(m, np.nan) for m in SUMMARY_METRICS}}
            for r in runs]
    return pd.DataFrame(rows)


def _by_label(runs: list[Run], key: str) -> dict[str, np.ndarray]:
    """Per table label, the values of ``key`` over seeds (in seed order)."""
    out: dict[str, list[float]] = {}
    for r in sorted(runs, key=lambda r: r.seed):
        out.setdefault(label(r), []).append(r.final.get(key, np.nan))
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def _mean_sd(values: np.ndarray) -> str:
    sd = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.3f} ± {sd:.3f}"


def table_chance(res: Result):
    """Each trained variant beside the controls that learned nothing: the concept metric in every
    reading, and the inference L0, as mean ± standard deviation over seeds."""
    import pandas as pd

    runs = res.main + res.controls
    columns = {"mean PCC (paper)": "mean_pcc", f"coverage@{res.threshold:g}": "coverage",
               "Pearson, raw codes": "mean_pcc_raw", "Spearman": "mean_pcc_spearman",
               "Pearson, exp(standardised)": "mean_pcc_exp_std",
               "held out (paper's, other words)": "mean_pcc_heldout"}
    table = pd.DataFrame({title: {k: _mean_sd(v) for k, v in _by_label(runs, key).items()}
                          for title, key in columns.items()})
    # An SAE's L0 on held-out tokens; a control without an encoder, its L0 on the pair words.
    l0 = {lab: np.mean([r.final.get("val_l0", r.final.get("pairs_l0")) for r in runs
                        if label(r) == lab]) for lab in table.index}
    table["L0 at inference"] = [f"{l0[k]:.1f}" for k in table.index]
    table["seeds"] = [len(v) for v in _by_label(runs, "mean_pcc").values()]
    return table


def paired_gain(res: Result, variant: str, key: str = "mean_pcc", against: str = "untrained"
                ) -> tuple[float, float, int]:
    """Trained ``variant`` minus a control (its own ``untrained`` version, or random features:
    ``random`` / ``random_topk``) on ``key``, paired by seed: (mean, standard error, n seeds)."""
    trained = {r.seed: r.final[key] for r in res.main if r.variant == variant}
    base = {r.seed: r.final[key] for r in res.controls if r.kind == against
            and (r.variant == variant or against != "untrained")}
    d = np.array([trained[s] - base[s] for s in sorted(trained) if s in base])
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), float(se), len(d)


def verdict(mean: float, se: float) -> str:
    """Our rule for "beats": a positive paired difference larger than twice its standard error
    over seeds (one seed cannot show it)."""
    if not np.isfinite(se):
        return "cannot be told apart from (one seed)"
    return "beats" if mean > 2 * se else "does not beat"


def glue_numbers(res: Result) -> dict[str, object]:
    """Glue (myst-nb) the numbers and verdicts the chapter's prose quotes; returns them too."""
    from IPython.display import Markdown

    values: dict[str, object] = {"n_seeds": len({r.seed for r in res.main}),
                                 "n_concepts": len(res.concepts.names)}
    pcc = _by_label(res.main + res.controls, "mean_pcc")
    spear = _by_label(res.main + res.controls, "mean_pcc_spearman")
    held = _by_label(res.main + res.controls, "mean_pcc_heldout")
    for v in VARIANTS:  # every key exists, NaN for a variant that was not run
        lab, ran = VARIANT_LABELS[v], any(r.variant == v for r in res.main)
        nan = np.array([np.nan])
        values[f"{v}_pcc"] = pcc.get(lab, nan).mean()
        values[f"{v}_spearman"] = spear.get(lab, nan).mean()
        values[f"{v}_untrained_pcc"] = pcc.get(f"untrained {lab}", nan).mean()
        values[f"{v}_untrained_spearman"] = spear.get(f"untrained {lab}", nan).mean()
        values[f"{v}_heldout"] = held.get(lab, nan).mean()
        for key, suffix in (("mean_pcc", ""), ("mean_pcc_spearman", "_spearman"),
                            ("mean_pcc_heldout", "_heldout")):
            # Random features at the top-k variants' sparsity: dense random codes score higher
            # on this metric, so a sparse SAE is judged against chance at its own sparsity.
            for against, tag in (("untrained", ""), ("random_topk", "_random")):
                mean, se, _ = paired_gain(res, v, key, against) if ran else (np.nan, np.nan, 0)
                values[f"{v}_gain{tag}{suffix}"], values[f"{v}_gain{tag}{suffix}_se"] = mean, se
                values[f"{v}_verdict{tag}{suffix}"] = Markdown(verdict(mean, se) if ran
                                                                else "was not run against")
    for kind in ("random", "random_topk", "model_dims", "ceiling"):
        values[f"{kind}_pcc"] = pcc[CONTROL_LABELS[kind]].mean()
        values[f"{kind}_spearman"] = spear[CONTROL_LABELS[kind]].mean()
        values[f"{kind}_heldout"] = held[CONTROL_LABELS[kind]].mean()
    values["density"] = Markdown(
        "rewards dense codes by itself" if values["random_pcc"] > values["random_topk_pcc"]
        else "does not reward dense codes by itself")
    for reading in READINGS:  # the alpha ablation's runs with alpha > 0, every seed
        runs = [r for r in res.ablation if r.variant == reading]
        values[f"ablation_{reading}_pcc"] = float(np.mean([r.final["mean_pcc"] for r in runs])
                                                  if runs else np.nan)
        values[f"ablation_{reading}_l0"] = float(np.mean([r.final["val_l0"] for r in runs])
                                                 if runs else np.nan)
    if any(r.variant == "batchtopk" for r in res.main):
        values["batchtopk_l0"] = _by_label(res.main, "val_l0")["batch-top-k"].mean()
        values["k"] = next(r.k for r in res.main if r.variant == "batchtopk")
    best = max({r.variant for r in res.main}, key=lambda v: values[f"{v}_pcc"])
    values["best"], values["best_pcc"] = Markdown(VARIANT_LABELS[best]), values[f"{best}_pcc"]
    order = sorted({r.variant for r in res.main}, key=lambda v: -values[f"{v}_pcc"])
    values["order"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order))
    order_s = sorted({r.variant for r in res.main}, key=lambda v: -values[f"{v}_spearman"])
    values["order_spearman"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order_s))
    return glue_values(values)


def table_2(res: Result):
    """Per-concept assigned PCC of each variant (mean over seeds) next to the paper's Table 2,
    then the controls' columns (untrained variants, random features, model dimensions, the
    ceiling), computed on the same words by the same metric."""
    import pandas as pd

    runs, concepts, n = res.main, res.concepts, len(res.concepts.names)
    cols = {}
    for i, v in enumerate(VARIANTS):
        mine = [r.final["pcc_K"] for r in runs if r.variant == v]
        if mine:
            cols[f"ours {VARIANT_LABELS[v]}"] = np.mean(mine, 0)
        cols[f"paper {VARIANT_LABELS[v]}"] = [PAPER_TABLE2[paper_name(n)][i]
                                              for n in concepts.names]
    for kind in CONTROLS:
        for lab in dict.fromkeys(label(r) for r in res.controls if r.kind == kind):
            cols[lab] = np.mean([r.final["pcc_K"] for r in res.controls if label(r) == lab], 0)
    table = pd.DataFrame(cols, index=list(concepts.names))
    table.loc["mean PCC"] = table.mean()
    for c in table.columns:
        if c.startswith("paper"):
            table.loc["mean PCC", c] = PAPER_MEAN[VARIANTS.index(_variant_of(c))]
    table.loc[f"coverage@{res.threshold:g} ({n} rows)"] = (table.iloc[:n] > res.threshold).mean()
    return table


def _variant_of(column: str) -> str:
    name = column.split(" ", 1)[1]
    return next(v for v, lab in VARIANT_LABELS.items() if lab == name)


@page_style
def figure_curves(runs: list[Run], metrics_: tuple[str, ...], label, title: str):
    """Metric trajectories over training steps (Figures 6 and 7): one line per ``label(run)``,
    the mean over that label's seeds, with a band of one standard deviation."""
    import matplotlib.pyplot as plt

    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(label(r), []).append(r)
    rows = -(-len(groups) // 2)  # legend rows
    height = 2.9 * len(metrics_) + 0.35 * rows + 0.5
    fig, axes = plt.subplots(len(metrics_), 1, figsize=(PAGE_WIDTH, height), sharex=True)
    for ax, m in zip(np.atleast_1d(axes), metrics_):
        for i, (name, members) in enumerate(groups.items()):
            steps = [h["step"] for h in members[0].history]
            values = np.array([[h[m] for h in r.history] for r in members])
            mean, sd = values.mean(0), values.std(0, ddof=1) if len(values) > 1 else 0 * values[0]
            ax.plot(steps, mean, marker=".", color=f"C{i % 10}",
                    label=f"{name} ({len(members)} seeds)")
            ax.fill_between(steps, mean - sd, mean + sd, color=f"C{i % 10}", alpha=0.2)
        ax.set_ylabel(METRIC_LABELS.get(m, m))
        ax.grid(alpha=0.3)
        if m.endswith("mse"):
            from matplotlib.ticker import FormatStrFormatter

            ax.set_yscale("log")
            for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis(FormatStrFormatter("%.3g"))
    np.atleast_1d(axes)[-1].set_xlabel("training step")
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.35 * rows + 0.3) / height, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=2)
    return fig


METRIC_LABELS = {"pairs_mse": "MSE, word-pair inputs", "val_mse": "MSE, held-out tokens",
                 "val_l0": "active features (L0)", "mean_pcc": "mean PCC (paper's)",
                 "coverage": "coverage (PCC > 0.5)"}
"""Axis labels, in words, of the metrics the curves show."""


@page_style
def figure_final_mse(res: Result):
    """Figure 4b: reconstruction MSE on the pair words (the paper's measure) per variant."""
    import matplotlib.pyplot as plt

    main, matched = res.main, res.matched
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 4.2))
    bars = [(f"{VARIANT_LABELS[r.variant]}\nown L0 ({r.final['val_l0']:.0f})",
             r.final["pairs_mse"]) for r in main if r.seed == main[0].seed]
    bars += [(f"{VARIANT_LABELS[r.variant]}\nk={r.k}", r.final["pairs_mse"])
             for r in matched if r.seed == main[0].seed]
    ax.bar([b[0] for b in bars], [b[1] for b in bars],
           color=["C0", "C1", "C2", "C3"][:len(main)] + ["C5"] * len(matched))
    ax.set_ylabel("MSE on word-pair inputs")
    ax.tick_params(axis="x", labelsize=9.5)
    fig.tight_layout()
    return fig


@page_style
def figure_chance(res: Result):
    """Mean assigned correlation of every trained variant and every control, in each reading of
    the metric: bars are means over seeds, whiskers one standard deviation."""
    import matplotlib.pyplot as plt

    readings = {"mean_pcc": "paper: Pearson(logit, exp(code))", "mean_pcc_raw": "Pearson(logit, code)",
                "mean_pcc_spearman": "Spearman(logit, code)",
                "mean_pcc_exp_std": "Pearson(logit, exp(standardised code))",
                "mean_pcc_heldout": "paper's, held out (other words)"}
    runs = res.main + res.controls
    n_bars = len(_by_label(runs, "mean_pcc"))
    fig, axes = plt.subplots(len(readings), 1, figsize=(PAGE_WIDTH, (0.28 * n_bars + 1.2)
                                                         * len(readings)), sharex=True)
    for ax, (key, title) in zip(axes.flat, readings.items()):
        values = _by_label(runs, key)
        names = list(values)
        means = [values[n].mean() for n in names]
        sds = [values[n].std(ddof=1) if len(values[n]) > 1 else 0.0 for n in names]
        colours = ["C0" if n in VARIANT_LABELS.values() else "0.6" for n in names]
        ax.barh(names, means, xerr=sds, color=colours, capsize=2)
        ax.set(xlim=(0, 1))
        ax.set_title(title)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    axes.flat[-1].set_xlabel("mean assigned correlation over concepts")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------- the long setting
LONG = {"n_tokens": 200_000, "val_tokens": 8192, "n_features": 2048, "steps": 5000,
        "eval_every": 500, "checkpoint_every": 1000, "seeds": (0,), "alphas": (),
        "matched_l0": False, "dead_after_tokens": 400_000}
"""Does the answer depend on scale? The ``long`` setting (overrides of the default profile):
more tokens, more steps, a wider dictionary, every variant once. ``ipta sae-long`` trains it
(about half an hour on 2 CPU cores, minutes on a GPU) and writes :data:`LONG_RESULT`, a small
summary the page draws without retraining; the runs go through the cache like the chapter's."""

LONG_RESULT = Path("book") / "results" / "sae_long.json"
"""The long setting's summary, relative to the project root."""


def long_config(**overrides: Any) -> Config:
    """The Config of the long setting (``overrides`` on top, checked like any parameter)."""
    return Config.for_profile("default", **{**LONG, **overrides})


def summarise_long(res: Result, cfg: Config) -> dict[str, Any]:
    """Per variant: training tokens at each evaluation, the metric there (paper's reading and
    held out), and the untrained version's and sparse random features' scores."""
    untrained = {r.variant: r.final for r in res.controls if r.kind == "untrained"}
    random_topk = [r.final for r in res.controls if r.kind == "random_topk"]
    out: dict[str, Any] = {"settings": cfg.to_dict(), "variants": {}}
    for r in res.main:
        history = [h for h in r.history if "mean_pcc" in h]
        out["variants"][r.variant] = {
            "tokens": [h["step"] * cfg.batch_size for h in history],
            "mean_pcc": [h["mean_pcc"] for h in history],
            "mean_pcc_heldout": [h.get("mean_pcc_heldout") for h in history],
            "val_l0": [h["val_l0"] for h in history],
            "untrained_pcc": untrained[r.variant]["mean_pcc"],
            "untrained_heldout": untrained[r.variant].get("mean_pcc_heldout"),
            "random_topk_pcc": random_topk[0]["mean_pcc"]}
    return out


def load_long(path: str | Path | None = None) -> dict[str, Any] | None:
    """The long setting's summary from this checkout's ``book/results`` (None if absent)."""
    import json

    path = Path(path) if path else Path(__file__).resolve().parents[2] / LONG_RESULT
    return json.loads(path.read_text()) if path.is_file() else None


LONG_SHOWN = ("n_tokens", "n_features", "steps", "batch_size", "k", "lr", "seeds", "model")


def table_long_settings(summary: dict[str, Any]) -> "pandas.DataFrame":
    """The settings the long setting's cached summary was computed with (those that differ from
    the default profile's, and the main sizes), and its wall time."""
    import pandas as pd

    default = Config().to_dict()
    settings = summary["settings"]
    keys = [k for k in settings if k in LONG_SHOWN or settings[k] != default.get(k)]
    rows = {k: str(settings[k]) for k in keys}
    rows["wall time (this machine)"] = f"{summary.get('wall_seconds', float('nan')) / 60:.0f} min"
    return pd.DataFrame({"value": rows})


@page_style
def figure_long(summary: dict[str, Any] | None):
    """Mean PCC minus each variant's untrained score against training tokens (top: the paper's
    reading; bottom: held out); without a summary, a panel saying how to make one."""
    import matplotlib.pyplot as plt

    if summary is None:
        fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "not computed yet: run `ipta sae-long`", ha="center", va="center")
        return fig

    fig, axes = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 7.4), sharex=True, sharey=True)
    for ax, key, base, title in ((axes[0], "mean_pcc", "untrained_pcc", "paper's reading"),
                                 (axes[1], "mean_pcc_heldout", "untrained_heldout",
                                  "held out (other words)")):
        for i, (variant, v) in enumerate(summary["variants"].items()):
            if v.get(base) is None or any(x is None for x in v[key]):
                continue
            gain = [x - v[base] for x in v[key]]
            ax.plot(v["tokens"], gain, "-o", ms=3, color=f"C{i}", label=VARIANT_LABELS[variant])
        ax.axhline(0, color="grey", lw=1)
        ax.set(title=title, ylabel="mean PCC minus untrained")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("training tokens")
    axes[0].legend()
    fig.tight_layout()
    return fig


def long_numbers(summary: dict[str, Any] | None) -> dict[str, object]:
    """Glue the long setting's numbers (NaN and a note when no summary exists)."""
    from IPython.display import Markdown

    values: dict[str, object] = {}
    for v in VARIANTS:
        run = (summary or {}).get("variants", {}).get(v)
        first = run["mean_pcc"][0] - run["untrained_pcc"] if run else float("nan")
        last = run["mean_pcc"][-1] - run["untrained_pcc"] if run else float("nan")
        values[f"long_{v}_first"], values[f"long_{v}_last"] = first, last
        values[f"long_{v}_l0"] = run["val_l0"][-1] if run else float("nan")
    if summary:
        runs = summary["variants"]
        values["long_tokens"] = max(max(r["tokens"]) for r in runs.values())
        order = sorted(runs, key=lambda v: -(runs[v]["mean_pcc"][-1] - runs[v]["untrained_pcc"]))
        values["long_order"] = Markdown(" > ".join(VARIANT_LABELS[v] for v in order))
    else:
        values["long_tokens"] = float("nan")
        values["long_order"] = Markdown("(not computed: run `ipta sae-long`)")
    return glue_values(values)

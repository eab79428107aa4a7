"""Parameters of the SAE chapter (notebook ``04_sae``, appendix H) and the names they use.

Declarations and validation only: values reach cache keys through
:meth:`ipta.config.Config.cache_spec`, so this module is not part of any code fingerprint.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ipta.config import Config as BaseConfig
from ipta.config import SEED_HIGH, ConfigError, param
from ipta.devices import DEVICE_HELP, device_problem

VARIANTS = ("topk", "batchtopk", "panneal", "structured")
"""The paper's four variants (Table 2), the chapter's default; each is a registered mechanism
class of :mod:`ipta.sae.mechanisms`, which knows everything else about it."""
READINGS = ("structured", "adapter")
"""The two readings of the structured SAE (nuclear-norm penalty; adapter branch) that the alpha
ablation runs."""


def _unregistered(variant: str) -> str | None:
    """What is wrong with a variant name: ``None`` for a registered mechanism (the built-in ones
    are known without importing torch; another is looked up in the registry)."""
    if variant in VARIANTS + READINGS:
        return None
    from ipta.sae.mechanisms import MECHANISMS

    if variant in MECHANISMS:
        return None
    return f"is not a registered SAE variant; choose from {', '.join(MECHANISMS)}"


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the SAE chapter (defaults = the ``default`` profile, CPU-sized)."""

    model: str = param("smollm2-135m", "causal LM whose activations the SAEs learn (short name, "
                       "HF id or folder)", path="or_name")
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
    variants: tuple[str, ...] = param(VARIANTS, "SAE variants to train: topk, batchtopk, panneal, "
                                      "structured, adapter, or any other registered in "
                                      "ipta.sae.mechanisms", check=_unregistered)
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
    target_l0: int = param(0, "p-annealing family: steer the penalty coefficient so that "
                             "the training L0 settles at this many active features (0 = off, "
                             "the paper's schedule from lambda_0)", low=0, limit=1 << 20)
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
    curve_readings: Literal["paper", "all"] = param(
        "paper", "readings of the concept metric at each validation point: the paper's alone "
        "(what Figures 6 and 7 draw) or every reading and the held-out view (the long "
        "setting's curves); the final evaluation always has all")
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
    n_boot: int = param(1000, "bootstrap replicates of every verdict (seeds, concepts and word "
                        "pairs resampled)", low=100, limit=100_000)
    null_seeds: int = param(12, "untrained copies of seeds never trained, in groups as large as "
                            "'seeds', whose comparisons measure the verdict test's false "
                            "positives", low=0, limit=1000)
    planted_steps: int = param(400, "training steps of the planted benchmark's SAEs", low=2,
                               limit=1_000_000)
    pcc_threshold: float = param(0.5, "coverage counts concepts with PCC above this", low=-1,
                                 high=1)

    PROFILES = {
        "smoke": {"seeds": (0, 1), "n_tokens": 3000, "val_tokens": 512, "context_length": 64,
                  "max_windows_per_doc": 1, "n_features": 128, "k": 8, "steps": 40,
                  "batch_size": 64, "warmup_steps": 10, "sparsity_warmup_steps": 10,
                  "alphas": (0.0, 0.1), "eval_every": 10, "checkpoint_every": 20,
                  "max_pairs_per_concept": 4, "dead_after_tokens": 1000, "n_boot": 200,
                  "null_seeds": 4, "planted_steps": 40},
        # Under two minutes cold on 2 cores (README): fewer rows, steps and word pairs.
        "classroom": {"n_tokens": 8192, "val_tokens": 1024, "n_features": 512, "steps": 150,
                      "warmup_steps": 40, "sparsity_warmup_steps": 30, "seeds": (0, 1),
                      "alphas": (0.0, 0.1), "ablation_readings": ("structured",),
                      "eval_every": 50, "checkpoint_every": 75, "dead_after_tokens": 20_000,
                      "max_pairs_per_concept": 24, "n_boot": 200, "null_seeds": 4,
                      "planted_steps": 100},
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
        if self.target_l0 > self.n_features:
            raise ConfigError(f"parameter 'target_l0' ({self.target_l0}) exceeds 'n_features' "
                              f"({self.n_features})")
        if self.k > self.n_features:
            raise ConfigError(f"parameter 'k' ({self.k}) exceeds 'n_features' ({self.n_features})")
        if self.warmup_steps >= self.steps:
            raise ConfigError(f"parameter 'warmup_steps' ({self.warmup_steps}) must be below "
                              f"'steps' ({self.steps})")
        if self.rank > min(self.batch_size, self.n_features):
            raise ConfigError(f"parameter 'rank' ({self.rank}) exceeds min(batch_size, n_features)")
        for name in ("sparsity_warmup_steps", "n_p_updates", "eval_every", "checkpoint_every"):
            if getattr(self, name) > self.steps:
                raise ConfigError(f"parameter {name!r} ({getattr(self, name)}) exceeds 'steps' "
                                  f"({self.steps})")

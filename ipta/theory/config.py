"""Parameters of the theory chapter (notebook ``01_theory``): the enumerated model's sizes,
the two noise knobs, and how the next-token model is trained.

Declarations and validation only: every value reaches a cache key through
:meth:`ipta.config.Config.cache_spec`, so config modules stay out of code fingerprints
(:func:`ipta.fingerprint.code_closure`) and editing a parameter's doc text keeps the cache.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ipta.config import Config as BaseConfig
from ipta.config import SEED_HIGH, ConfigError, param


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the theory chapter (notebook ``01_theory``)."""

    n_concepts: int = param(3, "number K of binary latent concepts (|Z| = 2^K; K <= 4 because "
                            "the diversity condition needs 2^K - 1 <= context_bits <= 16)",
                            low=2, high=4)
    graph: Literal["chain", "er"] = param("er", "latent DAG: a chain, or Erdos-Renyi with "
                                          "`edges_per_node` * K expected edges")
    edges_per_node: float = param(1.0, "ER graphs: expected edges per node (ER1, ER2, ...)",
                                  low=0.0, high=3.0)
    n_graphs: int = param(3, "random graphs (each with its own CPTs, codes and channels)",
                          low=1, high=50)
    context_bits: int = param(8, "bits M in a context x (|X| = 2^M contexts); the diversity "
                              "condition needs M >= 2^K - 1", low=2, high=16)
    context_noise: tuple[float, ...] = param(
        (0.4, 0.3, 0.2, 0.12, 0.07, 0.04, 0.02, 0.01),
        "flip probabilities of the context bits: the invertibility knob (0.5 = no information)",
        low=1e-4, high=0.49)
    token_noise: tuple[float, ...] = param(
        (0.5, 0.02), "probabilities that the next token ignores z (its channel's noise)",
        low=1e-4, high=1.0)
    vocab_extra: int = param(1, "vocabulary size minus |Z| (the diversity condition needs >= 1)",
                             low=1, high=64)
    width_extra: int = param(0, "representation width d minus (|Y| - 1), the least width that "
                             "can reach the optimum", low=0, high=64)
    encoder: Literal["table", "mlp"] = param("table", "f(x): a free table per context, or an MLP "
                                             "on the context bits")
    steps: int = param(3000, "optimisation steps of the next-token model", low=1, high=200_000)
    lr: float = param(0.05, "Adam learning rate", low=1e-6, high=10.0)
    test_fraction: float = param(0.5, "share of contexts held out of the least-squares fit",
                                 low=0.05, high=0.95)
    seed: int = param(0, "master seed (graphs, CPTs, codes, initialisations, splits)", low=0,
                      high=SEED_HIGH)

    PROFILES = {
        "smoke": {"n_graphs": 2, "context_bits": 7, "context_noise": (0.3, 0.1, 0.02),
                  "steps": 600},
        # K = 4 needs M >= 15 context bits (32768 contexts) for the diversity condition; about
        # 70 minutes of training on 2 CPU cores (1.3 s a step, measured).
        "paper": {"n_concepts": 4, "context_bits": 15, "n_graphs": 3,
                  "context_noise": (0.4, 0.2, 0.1, 0.05, 0.02, 0.01)},
    }

    def validate(self) -> None:
        # log p(z|x) is affine in the M bits of x plus one per-context constant, so the
        # context-side diversity matrix has rank <= M + 1 and needs M + 1 >= |Z| = 2^K.
        needed = 2**self.n_concepts - 1
        if self.context_bits < needed:
            raise ConfigError(f"parameter 'context_bits': {self.context_bits} cannot satisfy the "
                              f"diversity condition with n_concepts={self.n_concepts}; allowed: "
                              f"context_bits >= 2^K - 1 = {needed} (the context-side rank is at "
                              "most context_bits + 1)")
        n_contexts, coefficients = 2**self.context_bits, 2**self.n_concepts + 1
        if (1 - self.test_fraction) * n_contexts < coefficients:
            raise ConfigError(f"parameter 'test_fraction': {self.test_fraction} leaves about "
                              f"{(1 - self.test_fraction) * n_contexts:.1f} of the "
                              f"{n_contexts} contexts to fit {coefficients} coefficients per "
                              "output; allowed: at least as many fitted contexts as "
                              "coefficients (lower test_fraction or raise context_bits)")
        if self.graph == "chain" and self.edges_per_node != 1.0:
            raise ConfigError("parameter 'edges_per_node' only applies to graph='er'")

"""Parameters of the simulations chapter (notebook ``02_simulations``, Figure 2).

Declarations and validation only: values reach cache keys through
:meth:`ipta.config.Config.cache_spec`, so this module is not part of any code fingerprint.
"""

from __future__ import annotations

import dataclasses

from ipta.config import Config as BaseConfig
from ipta.config import SEED_HIGH, ConfigError, param
from ipta.devices import DEVICE_HELP, device_problem


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the simulations chapter (Figure 2 left and right)."""

    chain_latents: int = param(3, "latents in the chain of Figure 2 (left)", low=2, high=8)
    chain_observed: tuple[int, ...] = param(
        (2, 3, 4, 6, 9, 12), "observed-variable counts m of Figure 2 (left)", low=2, high=64)
    er_graphs: tuple[str, ...] = param(("ER1", "ER2", "ER3"), "Erdos-Renyi kinds of Figure 2 (right)",
                                       choices=("ER1", "ER2", "ER3", "ER4"))
    er_latents: tuple[int, ...] = param((4, 5, 6, 7, 8), "latent sizes K of Figure 2 (right)",
                                        low=2, high=8)
    er_observed_per_latent: int = param(3, "Figure 2 (right) observes m = this times K variables",
                                        low=1, high=8)
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), "seeds: problem, init and data of each run", low=0,
                                   high=SEED_HIGH)
    steps: int = param(2000, "Adam steps per run (default: where the loss has flattened for "
                       "K <= 7 and falls slowly for K = 8)", low=1, limit=100_000)
    batch_size: int = param(64, "samples per step (fresh from the DAG each step)", low=2,
                            limit=65_536)
    lr: float = param(1e-3, "Adam learning rate (illegible in the paper; our choice)", low=1e-6, high=1.0)
    hidden: int = param(128, "width of each MLP layer (paper: 256; on 2 CPU cores 128 reaches a "
                        "lower loss in the same time)", low=2, limit=8192)
    n_layers: int = param(3, "Linear-BatchNorm-ReLU blocks (paper: 3)", low=1, high=8)
    embed_dim: int = param(64, "width of the position-and-state token embedding", low=1,
                           limit=8192)
    n_fit: int = param(500, "samples to fit each logistic-regression probe", low=20,
                       limit=1_000_000)
    n_score: int = param(500, "separate samples to score each probe", low=20,
                         limit=1_000_000)
    positions_probed: int = param(4, "masked positions probed one by one in each run (evenly "
                                  "spaced; every position if m is smaller)", low=1, high=64)
    unseen_share: float = param(0.25, "share of latent configurations held out of every "
                                "probe's fit and scored on (the readout that can fail)",
                                low=0.05, high=0.5)
    probe_c: float = param(1.0, "inverse L2 strength C of the probes (scikit-learn default)", low=1e-6,
                           high=1e6)
    table_low: float = param(0.2, "lower end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    table_high: float = param(0.8, "upper end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    device: str = param("auto", f"where to train: {DEVICE_HELP}", check=device_problem,
                        affects_results=False)

    PROFILES = {
        "smoke": {"chain_observed": (2, 6), "er_graphs": ("ER1", "ER3"), "er_latents": (4, 5),
                  "seeds": (0, 1), "steps": 40, "hidden": 64, "n_fit": 200, "n_score": 200,
                  "positions_probed": 2},
        "classroom": {"chain_observed": (2, 4, 6, 9, 12), "er_latents": (4, 5, 6),
                      "seeds": (0, 1, 2), "steps": 800, "n_fit": 300, "n_score": 300},
        "paper": {"chain_observed": (2, 3, 4, 5, 6, 8, 10, 12, 16), "steps": 3000,
                  "batch_size": 256, "hidden": 256, "n_fit": 4000, "n_score": 4000},
    }

    def validate(self) -> None:
        if self.table_low > self.table_high:
            raise ConfigError(f"parameter 'table_low': {self.table_low} exceeds table_high "
                              f"{self.table_high}")

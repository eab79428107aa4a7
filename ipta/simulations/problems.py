"""The problems of the simulations (paper section 6, appendix G.1): one per run of Figure 2.

Each *run* is one setting (graph kind, K latents, m observed variables) and one seed.  The seed
fixes the DAG and its tables, the observation map, the network's initial weights and the data,
so the spread over seeds is over random problems as well as random initialisations. The latent
model itself is :mod:`ipta.latent`; ``cfg`` is the chapter's
:class:`~ipta.simulations.config.Config`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ipta.latent.dag import (BernoulliDAG, all_configs, config_index, joint_probs, make_dag,
                             sample_latents)
from ipta.latent.invertibility import (identified_share, latent_bayes_accuracy,
                                       masked_bit_diversity_rank, masked_latent_bayes_accuracy,
                                       masked_token_entropy, posterior_concentration)
from ipta.latent.observe import ObservationMap, random_observation_map
from ipta.simulations.config import Config


@dataclasses.dataclass(frozen=True)
class Setting:
    """One run: the graph, its size, the number of observed variables and the seed."""

    panel: str  # "left" (chain, m varies) or "right" (ER graphs, K varies)
    graph: str
    n_latents: int
    n_observed: int
    seed: int

    def stream(self, purpose: int, with_m: bool = True) -> list[int]:
        """Seed words of an independent random stream of this run (numpy SeedSequence entropy).

        The DAG and observation streams leave m out, so one seed's runs with different m share
        the same DAG and nested observation maps (m' > m extends the m variables).
        """
        graph_id = 0 if self.graph == "chain" else int(self.graph[2:])
        words = [self.seed, graph_id, self.n_latents, purpose]
        return words + [self.n_observed] if with_m else words


def sweep_settings(cfg: Config) -> list[Setting]:
    """Every run of both panels of Figure 2, in a fixed order."""
    left = [Setting("left", "chain", cfg.chain_latents, m, s)
            for m in cfg.chain_observed for s in cfg.seeds]
    right = [Setting("right", g, k, cfg.er_observed_per_latent * k, s)
             for g in cfg.er_graphs for k in cfg.er_latents for s in cfg.seeds]
    return left + right


@dataclasses.dataclass(frozen=True)
class Problem:
    """A run's data-generating process and the exact invertibility of its observation map."""

    setting: Setting
    dag: BernoulliDAG
    obs: ObservationMap
    probs_C: np.ndarray
    configs_CK: np.ndarray

    def invertibility(self) -> dict[str, float]:
        """Exact measures (appendix G.1's 'degree of invertibility', made computable), and the
        exact floor of the masked-token loss that training approaches."""
        code_CM = self.obs.code_CM
        return {"identified_share": identified_share(self.probs_C, code_CM),
                "posterior_concentration": posterior_concentration(self.probs_C, code_CM),
                "bayes_full": float(latent_bayes_accuracy(self.probs_C, self.configs_CK,
                                                          code_CM).mean()),
                "bayes_masked": float(masked_latent_bayes_accuracy(self.probs_C, self.configs_CK,
                                                                   code_CM).mean()),
                "loss_floor": masked_token_entropy(self.probs_C, code_CM),
                "diversity_rank": masked_bit_diversity_rank(code_CM)}


def make_problem(setting: Setting, cfg: Config) -> Problem:
    """Build the DAG, its tables and the observation map of one run (appendix G.1)."""
    rng_dag = np.random.default_rng(setting.stream(0, with_m=False))
    dag = make_dag(setting.graph, setting.n_latents, rng_dag, cfg.table_low, cfg.table_high)
    rng_obs = np.random.default_rng(setting.stream(1, with_m=False))
    obs = random_observation_map(setting.n_latents, setting.n_observed, rng_obs)
    return Problem(setting, dag, obs, joint_probs(dag), all_configs(setting.n_latents))


def draw_samples(problem: Problem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(config_N, masked_N)``: ancestral samples' configurations and a uniform masked position."""
    config_N = config_index(sample_latents(problem.dag, n, rng))
    masked_N = rng.integers(problem.setting.n_observed, size=n)
    return config_N, masked_N


def training_data(problem: Problem, cfg: Config) -> dict[str, np.ndarray]:
    """All samples of one run, drawn from the run's own data stream: training, probe fit, probe score."""
    rng = np.random.default_rng(problem.setting.stream(2))
    config, masked = draw_samples(problem, cfg.steps * cfg.batch_size, rng)
    out = {"train_config_TB": config.reshape(cfg.steps, cfg.batch_size),
           "train_masked_TB": masked.reshape(cfg.steps, cfg.batch_size)}
    out["eval_config_N"], out["eval_masked_N"] = draw_samples(problem, cfg.n_fit + cfg.n_score, rng)
    return out

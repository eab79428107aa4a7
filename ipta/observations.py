"""The observation map of appendix G.1 and exact measures of how invertible it is.

G.1 one-hot encodes the joint latent configuration c (one of C = 2^K), applies a random
permutation to that one-hot vector, and writes the index of the permuted position in binary:
each permutation yields log2(C) = K observed bits, and the pool of observed variables is every
(permutation, bit) pair.  Bit b of a random permutation of C items is a uniformly random
*balanced* Boolean function of c (1 on exactly half the configurations), so drawing m variables
from the pool means drawing m independent random balanced functions; few of them map distinct
configurations to the same observation (non-invertible), many of them separate all C.

Because the map is deterministic and C is small, everything about its invertibility is exact:
configurations sharing an observation code form groups, and posteriors are sums within groups.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ObservationMap:
    """``code_CM[c, j]`` is observed bit j when the latents are in configuration c.

    Observed variable j is bit ``bits[j]`` of the position that ``permutations[j]`` sends c to.
    """

    permutations: np.ndarray  # (M, C): permutations[j, c] = permuted index of configuration c
    bits: np.ndarray  # (M,)

    @property
    def code_CM(self) -> np.ndarray:
        return ((self.permutations.T >> self.bits[None, :]) & 1).astype(np.uint8)

    @property
    def n_observed(self) -> int:
        return len(self.bits)

    def observe(self, config_N: np.ndarray) -> np.ndarray:
        """``obs_NM``: the observed bits of each sample, from its configuration index."""
        return self.code_CM[config_N]

    def prefix(self, n_observed: int) -> "ObservationMap":
        """The map restricted to its first ``n_observed`` variables."""
        return ObservationMap(self.permutations[:n_observed], self.bits[:n_observed])


def random_observation_map(n_latents: int, n_observed: int,
                           rng: np.random.Generator) -> ObservationMap:
    """Draw ``n_observed`` (permutation, bit) pairs from the G.1 pool, one variable at a time.

    Variables are drawn in sequence from one generator, so for a fixed generator state the map
    with m variables is the first m of the map with m' > m: increasing m only adds information.
    """
    n_configs = 2 ** n_latents
    perms, bits = [], []
    for _ in range(n_observed):
        perms.append(rng.permutation(n_configs))
        bits.append(int(rng.integers(n_latents)))
    perms_MC = np.array(perms, dtype=np.int64).reshape(n_observed, n_configs)
    return ObservationMap(perms_MC, np.array(bits, dtype=np.int64))


def code_groups(code_CM: np.ndarray) -> np.ndarray:
    """``group_C``: configurations with equal observation codes get equal group ids."""
    if code_CM.shape[1] == 0:
        return np.zeros(code_CM.shape[0], dtype=np.int64)
    _, group_C = np.unique(code_CM, axis=0, return_inverse=True)
    return group_C.reshape(-1)


def identified_share(probs_C: np.ndarray, code_CM: np.ndarray) -> float:
    """Probability that the configuration is the only one with its observation code.

    1 means the map is injective on the support (every latent state can be read back exactly).
    """
    group_C = code_groups(code_CM)
    sizes = np.bincount(group_C)
    return float(probs_C[sizes[group_C] == 1].sum())


def posterior_concentration(probs_C: np.ndarray, code_CM: np.ndarray) -> float:
    """E_x[max_c P(c | x)]: the chance that the best guess of the whole configuration is right.

    This is the paper's approximate invertibility (section 2: the posterior concentrates on its
    dominant mode) made exact: 1 for an invertible map, the largest prior mass for a constant one.
    """
    group_C = code_groups(code_CM)
    best = np.zeros(group_C.max() + 1)
    np.maximum.at(best, group_C, probs_C)
    return float(best.sum())


def latent_bayes_accuracy(probs_C: np.ndarray, configs_CK: np.ndarray,
                          code_CM: np.ndarray) -> np.ndarray:
    """``acc_K``: the best accuracy any classifier of x can reach on each latent, exactly."""
    group_C = code_groups(code_CM)
    n_groups = group_C.max() + 1
    acc_K = np.zeros(configs_CK.shape[1])
    for k in range(configs_CK.shape[1]):
        mass_G2 = np.zeros((n_groups, 2))
        np.add.at(mass_G2, (group_C, configs_CK[:, k]), probs_C)
        acc_K[k] = mass_G2.max(axis=1).sum()
    return acc_K


def masked_latent_bayes_accuracy(probs_C: np.ndarray, configs_CK: np.ndarray,
                                 code_CM: np.ndarray) -> np.ndarray:
    """``acc_K`` when one observed variable, chosen uniformly, is hidden (the masked input).

    The ceiling for a linear probe on features of the masked input, which is what the network
    sees: averaged over which variable is masked.
    """
    n_obs = code_CM.shape[1]
    accs = [latent_bayes_accuracy(probs_C, configs_CK, np.delete(code_CM, j, axis=1))
            for j in range(n_obs)]
    return np.mean(accs, axis=0)


def masked_token_entropy(probs_C: np.ndarray, code_CM: np.ndarray) -> float:
    """The lowest masked-token cross-entropy (nats) any predictor can reach, exactly.

    The average over the masked position j (uniform, as in G.1's task) of H(x_j | x_-j): the
    floor the training loss of the masked next-token MLP approaches when it learns the task.
    """
    total = 0.0
    for j in range(code_CM.shape[1]):
        group_C = code_groups(np.delete(code_CM, j, axis=1))
        mass_G2 = np.zeros((group_C.max() + 1, 2))
        np.add.at(mass_G2, (group_C, code_CM[:, j]), probs_C)
        cond_G2 = mass_G2 / np.maximum(mass_G2.sum(axis=1, keepdims=True), 1e-300)
        total -= float((mass_G2 * np.log(np.where(cond_G2 > 0, cond_G2, 1.0))).sum())
    return total / code_CM.shape[1]

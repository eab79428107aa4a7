"""Exact measures of how invertible the map from latent concepts to observations is.

Definition 2.1's invertibility error reads a posterior p(z|x); the simulations' measures read a
deterministic observation map (:mod:`ipta.latent.observe`), where configurations sharing an
observation code form groups and posteriors are sums within groups. C is small, so every
measure here is exact, never sampled.
"""

from __future__ import annotations

import numpy as np


def invertibility_error_X(post_XZ: np.ndarray) -> np.ndarray:
    """Definition 2.1 as we read it: eps(x) = 1 - p(z_hat(x) | x), z_hat the posterior's mode.

    eps = 0 means x pins down z (the map is invertible at x); the posterior is then
    (1 - eps) delta_{z_hat} + eps q(z|x) with q a distribution on the other configurations."""
    return 1.0 - post_XZ.max(1)


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


def masked_bit_diversity_rank(code_CM: np.ndarray) -> int:
    """Rank of the token-side diversity matrix of the masked-bit task, read as generously as we
    can: every position's bit one token, with a small symmetric flip noise so that its log-odds
    ``log p(x_j = 1|z) - log p(x_j = 0|z)`` are finite (they are proportional to 2 x_j(z) - 1).

    The matrix has one row per position, so its rank is at most m; Theorem 3.1 needs |Z|."""
    return int(np.linalg.matrix_rank(2.0 * code_CM.T - 1))

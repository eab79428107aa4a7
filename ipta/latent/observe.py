"""The observation map of appendix G.1: from the latent configuration to observed bits.

G.1 one-hot encodes the joint latent configuration c (one of C = 2^K), applies a random
permutation to that one-hot vector, and writes the index of the permuted position in binary:
each permutation yields log2(C) = K observed bits, and the pool of observed variables is every
(permutation, bit) pair.  Bit b of a random permutation of C items is a uniformly random
*balanced* Boolean function of c (1 on exactly half the configurations), so drawing m variables
from the pool means drawing m independent random balanced functions; few of them map distinct
configurations to the same observation (non-invertible), many of them separate all C.

Two ways of drawing m variables from that pool, one per chapter's need:
:func:`random_observation_map` draws each variable with its own permutation, so the map with m
variables is a prefix of the map with more (the simulations grow m); :func:`pooled_observation_map`
draws a few permutations and keeps m of their (permutation, bit) columns without replacement,
G.1's recipe read literally (the theory chapter's noise-free context code). How invertible a map
is, is measured in :mod:`ipta.latent.invertibility`.
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


def pooled_observation_map(n_latents: int, n_observed: int,
                           rng: np.random.Generator) -> ObservationMap:
    """``n_observed`` distinct variables from a pool of ceil(m/K) + 1 random permutations.

    Each permutation contributes its K bits to the pool; ``n_observed`` of the pooled columns
    are kept at random, without replacement (appendix G.1 as the theory chapter reads it)."""
    n_perm = -(-n_observed // n_latents) + 1
    perms_PC = np.stack([rng.permutation(2 ** n_latents) for _ in range(n_perm)])
    cols = rng.choice(n_perm * n_latents, n_observed, replace=False)
    return ObservationMap(perms_PC[cols // n_latents].astype(np.int64),
                          (cols % n_latents).astype(np.int64))

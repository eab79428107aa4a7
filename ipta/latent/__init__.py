"""The one latent-variable model of the paper (section 2, Eq. 1; appendix G.1), shared by the
theory chapter and the simulations.

- :mod:`ipta.latent.dag`: binary concepts on a DAG, their Bernoulli tables, the enumeration of
  configurations, exact joint probabilities and ancestral sampling;
- :mod:`ipta.latent.observe`: the G.1 observation map (permuted one-hot codes written in bits);
- :mod:`ipta.latent.invertibility`: Definition 2.1's invertibility error and the exact
  invertibility measures of an observation map.
"""

"""The simulations chapter (Figure 2): masked next-token MLPs on data from random DAGs.

- :mod:`ipta.simulations.problems`: each run's DAG, observation map, samples and exact
  invertibility measures (on top of :mod:`ipta.latent`);
- :mod:`ipta.simulations.masked_mlp`: the G.1 network, trained one run at a time or all at once;
- :mod:`ipta.simulations.sweep`: training, the latent probes and the sweep's arrays;
- :mod:`ipta.simulations.chapter`: Config, run, tables and figures of notebook ``02_simulations``.
"""

"""The SAE chapter: sparse autoencoders judged by concept probes (paper section 5, appendix H).

- :mod:`ipta.sae.model`: one autoencoder and the registry of sparsity mechanisms (top-k,
  batch-top-k, p-annealing, structured), saved and loaded by name;
- :mod:`ipta.sae.train`: the one training loop, with checkpoints and exact resume;
- :mod:`ipta.sae.metrics`: MSE, FVU, L0, dead fraction and the H.2 concept metric (Pearson +
  Hungarian matching), each defined in its docstring;
- :mod:`ipta.sae.runs`: the concept data and one cached training run per variant and seed;
- :mod:`ipta.sae.chapter`: Config, run, tables and figures of notebook ``04_sae``.
"""

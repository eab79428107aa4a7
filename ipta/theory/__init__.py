"""The theory chapter: Theorem 3.1 and Corollaries 4.2 / 4.3 checked by exact enumeration.

The model itself (context and next-token channels on top of the latent DAG, and the exact p(z),
p(x), p(z|x), p(y|z), p(y|x) of Eqs. 1-3) is :mod:`ipta.latent.model`, shared with the probing
chapter's positive control.

- :mod:`ipta.theory.config`: the chapter's parameters;
- :mod:`ipta.theory.nexttoken`: the next-token model of Eq. 2 trained against the exact p(y|x);
- :mod:`ipta.theory.checks`: the affine fits, diversity ranks and corollary checks, and the sweep;
- :mod:`ipta.theory.channels`: the exact optimum over token noise and channel, no training;
- :mod:`ipta.theory.chapter` and :mod:`ipta.theory.figures`: run, tables and figures of notebook
  ``01_theory``.
"""

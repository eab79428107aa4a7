"""The theory chapter: Theorem 3.1 and Corollaries 4.2 / 4.3 checked by exact enumeration.

- :mod:`ipta.theory.model`: the context and next-token channels on top of :mod:`ipta.latent`,
  and the exact p(z), p(x), p(z|x), p(y|z), p(y|x) (Eqs. 1-3);
- :mod:`ipta.theory.nexttoken`: the next-token model of Eq. 2 trained against the exact p(y|x);
- :mod:`ipta.theory.checks`: the affine fits, diversity ranks and corollary checks, and the sweep;
- :mod:`ipta.theory.chapter`: Config, run, tables and figures of notebook ``01_theory``.
"""

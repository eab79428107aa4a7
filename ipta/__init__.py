"""ipta: the reproducible companion to "I Predict Therefore I Am" (Liu et al., ICLR 2026).

All computation behind the book lives here; the notebooks in ``notebooks/`` only call it.
Submodules are imported on demand, so ``import ipta`` stays light (no torch at import).
"""

__version__ = "0.1.0"

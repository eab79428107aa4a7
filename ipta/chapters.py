"""The book's chapters: each notebook in ``notebooks/`` and the config class of its parameters.

The runner reads this table to validate ``-p NAME VALUE`` before any computation.  Class paths
are strings so that the CLI starts without importing torch.
"""

from __future__ import annotations

import importlib

CHAPTERS: dict[str, str] = {
    "01_theory": "ipta.theory:TheoryConfig",
    "02_simulations": "ipta.simulations:SimulationConfig",
    "03_llm_probing": "ipta.probing:ProbingConfig",
    "04_sae": "ipta.sae_experiment:SAEConfig",
}


def config_class(chapter: str) -> type:
    """The Config subclass declared for ``chapter`` (a notebook stem)."""
    if chapter not in CHAPTERS:
        raise KeyError(f"unknown chapter {chapter!r}; known chapters: {', '.join(CHAPTERS)}")
    module, _, name = CHAPTERS[chapter].partition(":")
    return getattr(importlib.import_module(module), name)

"""The book's chapters: each notebook in ``notebooks/`` and the chapter module it imports.

Every chapter module is ``ipta.<chapter>.chapter`` and declares the same names: ``Config`` (its
parameters), ``setup``, ``run`` and its ``Result``, then ``table_*`` and ``figure_*`` helpers.
The runner reads ``Config`` to validate ``-p NAME VALUE`` before any computation. Module paths
are strings so that the CLI starts without importing torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CHAPTERS: dict[str, str] = {
    "01_theory": "ipta.theory.chapter",
    "02_simulations": "ipta.simulations.chapter",
    "03_llm_probing": "ipta.probing.chapter",
    "04_sae": "ipta.sae.chapter",
}


def chapter_module(chapter: str) -> ModuleType:
    """The chapter module of ``chapter`` (a notebook stem)."""
    if chapter not in CHAPTERS:
        from ipta.config import ConfigError

        raise ConfigError(f"notebook {chapter!r} is not a chapter of this book (known: "
                          f"{', '.join(CHAPTERS)}): a new chapter needs its module in "
                          "ipta.chapters.CHAPTERS; any other notebook belongs outside notebooks/")
    return importlib.import_module(CHAPTERS[chapter])


def config_class(chapter: str) -> type:
    """The Config subclass declared for ``chapter`` (a notebook stem)."""
    return chapter_module(chapter).Config

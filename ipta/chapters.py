"""The book's chapters: each notebook in ``notebooks/`` and the chapter package it imports.

Every chapter package ``ipta.<chapter>`` has the same rooms: ``config`` (its ``Config``, the
parameters, light to import), the modules that compute, and ``chapter`` (``setup``, ``run``
and its ``Result``, ``describe``, ``glue_numbers``, then ``table_*``, ``figure_*`` and
``reading_*``), which the notebook imports. The runner reads ``Config`` from the config module
to validate ``-p NAME VALUE`` before any computation, so the CLI starts without torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CHAPTERS: dict[str, str] = {
    "01_theory": "ipta.theory",
    "02_simulations": "ipta.simulations",
    "03_llm_probing": "ipta.probing",
    "04_sae": "ipta.sae",
}
"""Notebook stem -> its chapter package."""


def _package(chapter: str) -> str:
    if chapter not in CHAPTERS:
        from ipta.config import ConfigError

        raise ConfigError(f"notebook {chapter!r} is not a chapter of this book (known: "
                          f"{', '.join(CHAPTERS)}): a new chapter needs its package in "
                          "ipta.chapters.CHAPTERS; any other notebook belongs outside notebooks/")
    return CHAPTERS[chapter]


def chapter_module(chapter: str) -> ModuleType:
    """The chapter module of ``chapter`` (a notebook stem): ``ipta.<package>.chapter``."""
    return importlib.import_module(f"{_package(chapter)}.chapter")


def config_class(chapter: str) -> type:
    """The Config subclass declared for ``chapter`` (a notebook stem), from its light config
    module."""
    return importlib.import_module(f"{_package(chapter)}.config").Config

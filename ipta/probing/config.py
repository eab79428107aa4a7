"""Parameters of the LLM-probing chapter (notebook ``03_llm_probing``, Figure 3, appendix J).

Declarations and validation only: values reach cache keys through
:meth:`ipta.config.Config.cache_spec`, so this module is not part of any code fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ipta.config import Config as BaseConfig
from ipta.config import SEED_HIGH, ConfigError, param
from ipta.devices import DEVICE_HELP, device_problem
from ipta.lm.concepts import (CONCEPT_NAMES, SOURCES, paper_directory_named,
                              paper_directory_problem)
from ipta.probes import PAPER_C


@dataclass(frozen=True)
class Config(BaseConfig):
    """Parameters of the LLM-probing chapter (notebooks/03_llm_probing.py)."""

    models: tuple[str, ...] = param(("smollm2-135m", "gemma3-270m"),
                                    "models: embedded short names, Hugging Face ids or local "
                                    "folders ('tiny:llama' = a random tiny model, for tests)",
                                    path="or_name")
    concept_sources: tuple[str, ...] = param(("embedded", "paper"),
                                             "concept sets; 'paper' is shown when a folder of its files "
                                             "is named (else skipped with a note)", choices=SOURCES)
    word_pairs_dir: str | None = param(None, "folder of the paper's 27 word-pair files (else "
                                       "$IPTA_WORD_PAIRS_DIR; with neither, the paper's set is "
                                       "skipped with a note)",
                                       path=True, affects_results=False)  # the files' checksums are keyed
    concepts: tuple[str, ...] = param((), "concepts to use (empty = all 27)",
                                      choices=CONCEPT_NAMES, empty_ok=True)
    layer: int = param(-1, "index into hidden_states (-1 = after the final norm, the paper's)",
                       low=-1024, high=1024)
    position: Literal["last", "mean"] = param("last", "token read: last sub-token (paper) or mean")
    template: str | None = param(None, "prompt around each word, with '{word}' (None = alone)")
    revision: str | None = param(None, "hub revision of the model(s)")
    modes: tuple[str, ...] = param(("paper", "rigorous"), "which protocols to run",
                                   choices=("paper", "rigorous"))
    C: float = param(PAPER_C, "inverse L2 strength of the probe in paper mode", low=1e-8,
                     high=1e8)
    C_sweep: tuple[float, ...] = param((1e-4, 1e-2, 1.0, 1e2),
                                       "values of C in rigorous mode", low=1e-8,
                                       high=1e8)
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds of the train/test splits (rigorous mode)",
                                   low=0, high=SEED_HIGH)
    test_fraction: float = param(0.3, "share of each concept's pairs held out", low=0.05,
                                 high=0.8)
    max_iter: int = param(500, "lbfgs iterations of the paper-mode probe (the authors': 500)",
                          low=10, limit=100_000)
    rigorous_max_iter: int = param(20_000, "lbfgs iterations of the rigorous-mode probes: "
                                   "enough for every fit to converge at every C", low=10,
                                   limit=1_000_000)
    device: str = param("auto", f"device for the forward passes: {DEVICE_HELP}",
                        check=device_problem, affects_results=False)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = param(
        "auto", "model dtype ('auto': float32 on a CPU, bfloat16 on a GPU that has it; the "
        "authors used float32)")
    batch_size: int = param(64, "words per forward pass", low=1, limit=4096,
                            affects_results=False)
    positive_control: bool = param(True, "run the rigorous mode on the theory chapter's model "
                                   "too, where the corollaries' premises hold and the answer "
                                   "is known", affects_results=False)
    throughput: bool = param(True, "measure each model's words per second of uncached extraction "
                             "for the summary table", affects_results=False)
    device_map: str | None = param(None, "spread each model with accelerate: 'auto' fills the "
                                   "GPUs in turn, then the CPU (for models larger than one "
                                   "device); None keeps it on `device`", choices=(None, "auto"),
                                   affects_results=False)

    PROFILES = {
        "smoke": {"models": ("tiny:llama",), "concept_sources": ("embedded",),
                  "concepts": ("verb-3pSg", "noun-plural", "male-female", "country-capital",
                               "English-French"),
                  "C_sweep": (1e-4, 1.0), "seeds": (0, 1)},
        "classroom": {"models": ("smollm2-135m",), "seeds": (0, 1), "C_sweep": (1e-4, 1e-2, 1.0)},
        "paper": {"seeds": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), "dtype": "float32",
                  "C_sweep": (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 1e1, 1e2)},
    }

    def validate(self) -> None:
        if "paper" in self.concept_sources or self.word_pairs_dir is not None:
            problem = paper_directory_problem(self.word_pairs_dir)
            if problem:
                raise ConfigError(problem)
        if not any(s != "paper" or paper_directory_named(self.word_pairs_dir)
                   for s in self.concept_sources):
            raise ConfigError("parameter 'concept_sources': only 'paper' was asked for, but no "
                              "folder of its files was named; set word_pairs_dir (or "
                              "$IPTA_WORD_PAIRS_DIR) or add 'embedded'")
        if self.template is not None and "{word}" not in self.template:
            raise ConfigError(f"parameter 'template': {self.template!r} lacks '{{word}}'")
        if self.concepts and len(self.concepts) < 2:
            raise ConfigError("parameter 'concepts': need at least two concepts for a matrix")

"""The registry of sparsity mechanisms: one class per SAE variant (paper section 5, appendix H).

``topk``        keep each sample's k largest pre-activations (Gao et al. 2024);
``batchtopk``   keep the k*N largest over the whole batch while training, and at inference a
                global threshold (Bussmann et al. 2024): a moving average learned in training,
                or calibrated after it so that inference keeps k per input on average;
``panneal``     ReLU codes with an L_p^p penalty whose p steps from 1 towards 0, the penalty
                coefficient rescaled at each step of p (Karvonen et al. 2024);
``structured``  ``panneal`` plus alpha times the nuclear norm of the batch code matrix,
                estimated from its top-r singular values (the paper's eq. 6 / eq. 91-92);
``adapter``     the structured SAE read as appendix H.3's "p-annealing-LoRa SAE": a second,
                adapter encoder whose ReLU codes are added to the sparse codes before the one
                decoder, with the nuclear-norm term on the adapter's codes only and the L_p
                term on the sparse ones.

A variant is its class and nothing else (:class:`Mechanism` lists what a class declares): the
autoencoder (:mod:`ipta.sae.model`), the training loop, the runs, the controls and the export
reach it through :data:`MECHANISMS` by name, so registering a class is all a new variant needs.
The built-in ones live in :mod:`~ipta.sae.mechanisms.ksparse` (top-k, batch-top-k) and
:mod:`~ipta.sae.mechanisms.annealing` (p-annealing, structured, adapter). A mechanism may own a *branch* (:meth:`Mechanism.branch`): codes computed from the
centred input and added to the mechanism's own before decoding (only ``adapter`` has one).

Methods that read the whole training batch (batch-top-k's selection, AuxK's variance, the
nuclear norm, p-annealing's queue) take a :class:`~ipta.sae.distributed.SampleGroup`, so that
under torchrun each process holding part of the batch computes what one process would. A
mechanism keeps all its state (threshold, current p, coefficient) in buffers, so a saved SAE
restores inference behaviour exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ipta.sae.config import Config
from ipta.sae.distributed import LOCAL, SampleGroup

MECHANISMS: dict[str, type["Mechanism"]] = {}
"""Registry: variant name -> mechanism class."""


def register(name: str):
    """Class decorator adding a mechanism to :data:`MECHANISMS` under ``name``."""
    def add(cls: type["Mechanism"]) -> type["Mechanism"]:
        cls.name = name
        MECHANISMS[name] = cls
        return cls
    return add


class Mechanism(nn.Module):
    """Turns pre-activations into codes; may add a penalty and update state while training.

    Everything that makes a variant itself lives on its class, so that adding one is adding a
    registered class: its ``label``; its hyperparameters under the SAE chapter's Config
    (:meth:`hparams_from`); how its reference trainer starts and steps (:meth:`training`);
    whether its inference rule is calibrated after training (:meth:`calibrates`,
    :meth:`calibrate`); whether ``k`` or ``alpha`` names its sparsity or its low-rank weight
    (:attr:`uses_k`, :attr:`uses_alpha`); and its SAELens layout (:meth:`saelens`).

    Subclasses keep their hyperparameters in ``self.hparams`` (written to cfg.json) and their
    mutable state in buffers (written to safetensors).
    """

    name = "base"
    """The registry name (set by :func:`register`)."""
    label = "base"
    """The variant's name in tables and prose."""
    uses_k = False
    """``k`` sets its sparsity: the matched-L0 runs retrain it with k = the structured SAE's
    L0, and its run names carry ``k<k>``."""
    uses_alpha = False
    """A reading of the structured SAE: ``alpha`` weights its low-rank term, the alpha ablation
    trains it, and its run names carry ``a<alpha>``."""
    without_alpha: str | None = None
    """For a mechanism that :attr:`uses_alpha`: the registered variant it equals at alpha = 0."""
    saelens_architecture = "standard"
    """The SAELens architecture whose inference codes equal this mechanism's."""

    def __init__(self, **hparams: Any):
        super().__init__()
        self.hparams = dict(hparams)

    @classmethod
    def hparams_from(cls, cfg: Config, *, seed: int, alpha: float, k: int) -> dict[str, Any]:
        """Its constructor's keywords under the SAE chapter's ``cfg`` for one run (``seed``,
        ``alpha`` and ``k`` are the run's own; the sweep varies them)."""
        return {}

    @classmethod
    def with_shape(cls, hparams: dict[str, Any], d_model: int, n_features: int
                   ) -> dict[str, Any]:
        """``hparams`` completed with the autoencoder's sizes, for a mechanism that owns
        weights of that shape (the adapter); unchanged by default."""
        return hparams

    @classmethod
    def training(cls, cfg: Config) -> dict[str, Any]:
        """How its reference trainer starts and steps: ``b_pre_init`` (the pre-encoder bias's
        start) and ``grad_clip`` (0: no clipping), keywords of :func:`ipta.sae.train.train_sae`.
        The p-annealing trainers start at the mean and do not clip."""
        return {"b_pre_init": "mean", "grad_clip": 0.0}

    @classmethod
    def calibrates(cls, cfg: Config) -> bool:
        """Whether its inference rule is set after training (:meth:`calibrate`) under ``cfg``."""
        return False

    @torch.no_grad()
    def calibrate(self, pre_NF: torch.Tensor) -> float:
        """Set the inference rule from training pre-activations (for a mechanism that
        :meth:`calibrates`); returns the value set."""
        raise NotImplementedError(f"{self.name} has no inference rule to calibrate")

    def saelens(self, tensors: dict[str, torch.Tensor], input_scale: torch.Tensor
                ) -> dict[str, Any]:
        """The SAELens cfg fields of this mechanism; ``tensors`` (``W_enc``, ``W_dec``,
        ``b_enc``, ``b_dec``, float64, the autoencoder's ``input_scale`` folded in: see
        :mod:`ipta.sae.export`) may be extended or replaced in place for its inference rule."""
        return {"architecture": self.saelens_architecture}

    def forward(self, pre_NF: torch.Tensor) -> torch.Tensor:
        """Inference codes."""
        raise NotImplementedError

    def train_codes(self, pre_NF: torch.Tensor, group: SampleGroup = LOCAL) -> torch.Tensor:
        """Training codes (differ from inference for batch-top-k)."""
        return self(pre_NF)

    def sparse_train_codes(self, pre_NF: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The training codes as ``(values_NK, features_NK)``, K per sample, for a mechanism
        that keeps a fixed number per sample; the decoder then reads only those K rows (and
        ``penalty``/``observe`` receive ``values_NK``). None (dense codes) by default."""
        return None

    def penalty(self, codes_NF: torch.Tensor, step: int,
                branch_NF: torch.Tensor | None = None,
                group: SampleGroup = LOCAL) -> torch.Tensor:
        """Sparsity/structure term added to the reconstruction loss at ``step`` (``branch_NF``:
        the branch's codes, for a mechanism that has one)."""
        return codes_NF.new_zeros(())

    def branch(self, centred_ND: torch.Tensor) -> torch.Tensor | None:
        """Codes added to the mechanism's own before decoding; None (no branch) by default."""
        return None

    @torch.no_grad()
    def observe(self, codes_NF: torch.Tensor, step: int) -> None:
        """Update state from the training codes of ``step`` (after the penalty)."""

    def aux_loss(self, pre_NF: torch.Tensor, residual_ND: torch.Tensor, dead_F: torch.Tensor,
                 W_dec_FD: torch.Tensor, group: SampleGroup = LOCAL) -> torch.Tensor:
        """An auxiliary loss term (AuxK for the top-k family); none by default."""
        return pre_NF.new_zeros(())


# The built-in variants register themselves on import (after the names above exist).
from ipta.sae.mechanisms import annealing, ksparse  # noqa: E402,F401

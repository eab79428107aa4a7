"""The top-k family: top-k (Gao et al. 2024) and batch-top-k (Bussmann et al. 2024), with the
AuxK dead-latent loss and the way their reference trainers (dictionary_learning's) start and
step."""

from __future__ import annotations

from typing import Any

import torch

from ipta.sae.config import Config
from ipta.sae.distributed import LOCAL, SampleGroup
from ipta.sae.mechanisms import Mechanism, register


def auxk_loss(pre_NF: torch.Tensor, residual_ND: torch.Tensor, dead_F: torch.Tensor,
              W_dec_FD: torch.Tensor, k_aux: int, group: SampleGroup = LOCAL) -> torch.Tensor:
    """AuxK (Gao et al. 2024, appendix A.2): the ``k_aux`` largest pre-activations among the dead
    features of each input, through a ReLU, must reconstruct what the SAE left unexplained
    (``residual_ND``, detached); the squared error is divided by the residual's variance, so
    the term is 1 when the dead features explain nothing. 0 when no feature is dead."""
    n_dead = int(dead_F.sum())
    if n_dead == 0:
        return pre_NF.new_zeros(())
    masked = pre_NF.masked_fill(~dead_F, float("-inf"))
    top = masked.topk(min(k_aux, n_dead), dim=-1)
    codes_NF = torch.zeros_like(pre_NF).scatter(-1, top.indices, top.values.relu())
    error = (codes_NF @ W_dec_FD - residual_ND).pow(2).sum(-1).mean()
    centre_D = group.mean(residual_ND.mean(0))  # of the global batch
    variance = group.mean((residual_ND - centre_D).pow(2).sum(-1).mean()).clamp_min(1e-12)
    return error / variance


class KSparse(Mechanism):
    """What top-k and batch-top-k share: ``k`` codes per input (on average, for batch-top-k),
    the AuxK dead-latent loss, and dictionary_learning's way of starting and stepping."""

    uses_k = True

    def __init__(self, k: int = 32, auxk_alpha: float = 0.0, k_aux: int = 512, **hparams: Any):
        super().__init__(k=k, **hparams, auxk_alpha=auxk_alpha, k_aux=k_aux)
        self.k, self.auxk_alpha, self.k_aux = k, auxk_alpha, k_aux

    @classmethod
    def hparams_from(cls, cfg: Config, *, seed: int, alpha: float, k: int) -> dict[str, Any]:
        return {"k": k, "auxk_alpha": cfg.auxk_alpha, "k_aux": cfg.k_aux}

    @classmethod
    def training(cls, cfg: Config) -> dict[str, Any]:
        """The reference trainers (dictionary_learning's) start the pre-encoder bias at
        ``cfg.b_pre_init`` (the geometric median) and clip the gradient norm at
        ``cfg.grad_clip``."""
        return {"b_pre_init": cfg.b_pre_init, "grad_clip": cfg.grad_clip}

    def aux_loss(self, pre_NF, residual_ND, dead_F, W_dec_FD, group=LOCAL):
        if self.auxk_alpha == 0:
            return pre_NF.new_zeros(())
        return self.auxk_alpha * auxk_loss(pre_NF, residual_ND, dead_F, W_dec_FD, self.k_aux,
                                           group)


@register("topk")
class TopK(KSparse):
    """Each sample keeps its k largest pre-activations, through a ReLU (Gao et al. 2024)."""

    label = "top-k"
    saelens_architecture = "topk"

    def forward(self, pre_NF: torch.Tensor) -> torch.Tensor:
        top = pre_NF.topk(self.k, dim=-1)
        return torch.zeros_like(pre_NF).scatter(-1, top.indices, top.values.relu())

    def sparse_train_codes(self, pre_NF):
        top = pre_NF.topk(self.k, dim=-1)
        return top.values.relu(), top.indices

    def saelens(self, tensors, input_scale):
        return {"architecture": self.saelens_architecture, "k": int(self.k)}


@register("batchtopk")
class BatchTopK(KSparse):
    """Top k*N over the batch while training; a learned global threshold at inference.

    The threshold is an exponential moving average (``beta``) of the smallest code kept in each
    training batch, from ``threshold_start`` on (Bussmann et al. 2024).
    """

    label = "batch-top-k"
    saelens_architecture = "jumprelu"

    def __init__(self, k: int = 32, beta: float = 0.999, threshold_start: int = 0,
                 auxk_alpha: float = 0.0, k_aux: int = 512):
        super().__init__(k=k, beta=beta, threshold_start=threshold_start, auxk_alpha=auxk_alpha,
                         k_aux=k_aux)
        self.beta, self.threshold_start = beta, threshold_start
        self.register_buffer("threshold", torch.tensor(0.0))
        self.register_buffer("n_updates", torch.tensor(0, dtype=torch.long))

    def forward(self, pre_NF: torch.Tensor) -> torch.Tensor:
        acts = pre_NF.relu()
        return acts * (acts > self.threshold)

    def train_codes(self, pre_NF: torch.Tensor, group: SampleGroup = LOCAL) -> torch.Tensor:
        """ReLU codes at or above the (k N)-th largest of the batch (N: the global batch)."""
        acts_NF = pre_NF.relu()
        n_keep = self.k * pre_NF.shape[0] * group.size
        kept = group.largest(self.candidates(acts_NF.detach().flatten(), n_keep), n_keep)
        self._kept = kept  # for observe: k N values instead of the N x F codes
        # Values tied with the threshold all stay (continuous codes almost never tie); with
        # fewer than k N positive codes every positive code stays, as the plain top-k would.
        threshold = kept.min() if kept.numel() else acts_NF.new_zeros(())
        return acts_NF * (acts_NF >= threshold)

    @staticmethod
    def candidates(acts_M: torch.Tensor, n: int, stride: int = 16) -> torch.Tensor:
        """Positive values of ``acts_M`` (>= 0) that include its ``n`` largest, few of them.

        The selection over the whole batch is the slow part of a batch-top-k step (a top-k over
        N x F values); it runs on the values at or above a lower estimate of the n-th largest,
        taken from every ``stride``-th value so that about 2n pass. When fewer than n pass, the
        estimate was too high and all positive values are returned: the result is exact."""
        sample = acts_M[::stride]
        estimate = sample.topk(min(sample.numel(), 2 * n // stride + 1), sorted=False).values.min()
        if estimate > 0:
            passed = acts_M[acts_M >= estimate]
            if passed.numel() >= n:
                return passed
        return acts_M[acts_M > 0]

    @torch.no_grad()
    def observe(self, codes_NF: torch.Tensor, step: int) -> None:
        if step < self.threshold_start:
            return
        kept = getattr(self, "_kept", None)
        self._kept = None
        kept = codes_NF if kept is None else kept  # the kept values are the nonzero codes
        active = kept[kept > 0]
        smallest = active.min().float() if active.numel() else codes_NF.new_zeros(()).float()
        first = self.n_updates == 0
        self.threshold.copy_(torch.where(first, smallest,
                                         self.beta * self.threshold + (1 - self.beta) * smallest))
        self.n_updates += 1

    @classmethod
    def calibrates(cls, cfg: Config) -> bool:
        """By default (``cfg.batchtopk_threshold`` "calibrated") the threshold is set after
        training; "moving_average" keeps the one learned in training."""
        return cfg.batchtopk_threshold == "calibrated"

    @torch.no_grad()
    def calibrate(self, pre_NF: torch.Tensor) -> float:
        """Set the inference threshold so that on these pre-activations k codes per input stay
        on average, as in training: the (kN+1)-th largest ReLU value over the N x F batch.

        The moving average above starts at the first batch's smallest kept code and forgets it
        slowly (beta = 0.999 keeps 61% of the start after 500 steps), so after a short run its
        inference L0 can sit far from k; calibrating on training activations removes that."""
        acts = pre_NF.relu().flatten()
        n_keep = self.k * pre_NF.shape[0]
        value = acts.topk(n_keep + 1).values[-1] if n_keep < acts.numel() else acts.new_zeros(())
        self.threshold.fill_(float(value))
        return float(value)

    def saelens(self, tensors, input_scale):
        """JumpReLU with the one global threshold repeated per feature."""
        threshold = max(float(self.threshold), 0.0)
        tensors["threshold"] = torch.full_like(tensors["b_enc"], threshold)
        return {"architecture": self.saelens_architecture}

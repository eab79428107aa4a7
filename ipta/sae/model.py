"""One sparse autoencoder and a registry of sparsity mechanisms (paper section 5, appendix H.1).

The autoencoder is the same for every variant: inputs are rescaled by a stored scalar (input
normalisation), a pre-encoder bias ``b_pre`` is subtracted, a linear encoder gives
pre-activations, a *sparsity mechanism* turns them into codes, and a decoder whose rows
(one per feature) are kept at unit norm maps the codes back, adding ``b_pre`` again.

Variants differ only by the mechanism, looked up by name in :data:`MECHANISMS`:

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

A mechanism may own a *branch* (:meth:`Mechanism.branch`): codes computed from the centred
input and added to the mechanism's own before decoding (only ``adapter`` has one).

Methods that read the whole training batch (batch-top-k's selection, AuxK's variance, the
nuclear norm, p-annealing's queue) take a :class:`~ipta.sae.distributed.SampleGroup`, so that
under torchrun each process holding part of the batch computes what one process would.

A mechanism keeps all its state (threshold, current p, coefficient) in buffers, so the
safetensors file of :meth:`SparseAutoencoder.save` restores inference behaviour exactly and
:func:`load_sae` needs no branch on the variant.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

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


# ----------------------------------------------------------------------------- schedules
def lr_scale(step: int, warmup_steps: int) -> float:
    """Linear learning-rate warm-up from 0 (step 0) to 1 (step ``warmup_steps``), then constant."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def sparsity_scale(step: int, warmup_steps: int) -> float:
    """Sparsity warm-up of p-annealing: the penalty grows linearly from 0 to full strength."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


def p_index(step: int, anneal_start: int, anneal_end: int, n_updates: int) -> int:
    """How many of the ``n_updates`` evenly spaced p-steps (the first at ``anneal_start``, the
    last at ``anneal_end``) lie at or before ``step``, minus one; 0 before annealing starts."""
    if n_updates <= 1 or step < anneal_start:
        return 0
    span = max(anneal_end - anneal_start, 1)
    return min(n_updates - 1, (step - anneal_start) * (n_updates - 1) // span)


def p_at(step: int, p_start: float, p_end: float, anneal_start: int, anneal_end: int,
         n_updates: int) -> float:
    """The exponent p of the L_p^p penalty at ``step`` (p-annealing, Karvonen et al. 2024).

    p equals ``p_start`` until ``anneal_start``; then the i-th of ``n_updates`` evenly spaced
    steps (i = 0..n-1, the last at ``anneal_end``) sets p = p_start + (p_end - p_start) * i / n.
    So p moves from ``p_start`` towards ``p_end`` and stops one step short of it (p = 0 would
    make the penalty a constant).
    """
    i = p_index(step, anneal_start, anneal_end, n_updates)
    return float(p_start + (p_end - p_start) * i / max(n_updates, 1))


def next_p_step(step: int, anneal_start: int, anneal_end: int, n_updates: int) -> int | None:
    """The first step after ``step`` at which :func:`p_index` moves on; None once it no longer
    moves. Lets p-annealing fill its queue only in the steps just before a change of p."""
    i = p_index(step, anneal_start, anneal_end, n_updates)
    if n_updates <= 1 or i >= n_updates - 1:
        return None
    span = max(anneal_end - anneal_start, 1)
    return anneal_start + -(-(i + 1) * span // (n_updates - 1))  # ceil((i+1) span / (n-1))


def nuclear_norm_estimate(codes_NF: torch.Tensor, rank: int, oversample: int = 4,
                          niter: int = 2, seed: int = 0) -> torch.Tensor:
    """Sum of the top-``rank`` singular values of ``codes_NF`` via ``torch.svd_lowrank`` (eq. 92).

    ``svd_lowrank`` draws a random test matrix from the global generator; it runs inside a forked
    RNG seeded with ``seed``, so the estimate is reproducible (and a resumed run equals an
    uninterrupted one) while the caller's random state is left untouched. Differentiable.
    """
    q = min(rank + oversample, *codes_NF.shape)
    devices = [codes_NF.device] if codes_NF.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        _, s, _ = torch.svd_lowrank(codes_NF, q=q, niter=niter)
    return s[:rank].sum()


# ---------------------------------------------------------------------------- mechanisms
class Mechanism(nn.Module):
    """Turns pre-activations into codes; may add a penalty and update state while training.

    Subclasses keep their hyperparameters in ``self.hparams`` (written to cfg.json) and their
    mutable state in buffers (written to safetensors).
    """

    name = "base"

    def __init__(self, **hparams: Any):
        super().__init__()
        self.hparams = dict(hparams)

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


@register("topk")
class TopK(Mechanism):
    """Each sample keeps its k largest pre-activations, through a ReLU (Gao et al. 2024)."""

    def __init__(self, k: int = 32, auxk_alpha: float = 0.0, k_aux: int = 512):
        super().__init__(k=k, auxk_alpha=auxk_alpha, k_aux=k_aux)
        self.k, self.auxk_alpha, self.k_aux = k, auxk_alpha, k_aux

    def forward(self, pre_NF: torch.Tensor) -> torch.Tensor:
        top = pre_NF.topk(self.k, dim=-1)
        return torch.zeros_like(pre_NF).scatter(-1, top.indices, top.values.relu())

    def sparse_train_codes(self, pre_NF):
        top = pre_NF.topk(self.k, dim=-1)
        return top.values.relu(), top.indices

    def aux_loss(self, pre_NF, residual_ND, dead_F, W_dec_FD, group=LOCAL):
        if self.auxk_alpha == 0:
            return pre_NF.new_zeros(())
        return self.auxk_alpha * auxk_loss(pre_NF, residual_ND, dead_F, W_dec_FD, self.k_aux,
                                           group)


@register("batchtopk")
class BatchTopK(Mechanism):
    """Top k*N over the batch while training; a learned global threshold at inference.

    The threshold is an exponential moving average (``beta``) of the smallest code kept in each
    training batch, from ``threshold_start`` on (Bussmann et al. 2024).
    """

    def __init__(self, k: int = 32, beta: float = 0.999, threshold_start: int = 0,
                 auxk_alpha: float = 0.0, k_aux: int = 512):
        super().__init__(k=k, beta=beta, threshold_start=threshold_start, auxk_alpha=auxk_alpha,
                         k_aux=k_aux)
        self.k, self.beta, self.threshold_start = k, beta, threshold_start
        self.auxk_alpha, self.k_aux = auxk_alpha, k_aux
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

    aux_loss = TopK.aux_loss

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


@register("panneal")
class PAnneal(Mechanism):
    """ReLU codes with penalty coeff * warm-up * mean_n sum_f codes^p, p annealed 1 -> towards 0.

    When p steps down, the coefficient is multiplied by mean(L_p^p) / mean(L_p'^p') over the
    last ``queue`` batches, so the penalty's size is continuous across the step.
    """

    def __init__(self, initial_penalty: float = 0.1, p_start: float = 1.0, p_end: float = 0.0,
                 anneal_start: int = 0, anneal_end: int = 1000, n_updates: int = 10,
                 sparsity_warmup: int = 400, queue: int = 10):
        super().__init__(initial_penalty=initial_penalty, p_start=p_start, p_end=p_end,
                         anneal_start=anneal_start, anneal_end=anneal_end, n_updates=n_updates,
                         sparsity_warmup=sparsity_warmup, queue=queue)
        self.register_buffer("coeff", torch.tensor(float(initial_penalty)))
        self.register_buffer("p", torch.tensor(float(p_start)))
        # Recent (L_p^p at the current p, at the next p) pairs and how many slots are filled.
        self.register_buffer("queue_Q2", torch.zeros(queue, 2))
        self.register_buffer("queue_n", torch.tensor(0, dtype=torch.long))

    def forward(self, pre_NF: torch.Tensor) -> torch.Tensor:
        return pre_NF.relu()

    def _p(self, step: int) -> float:
        h = self.hparams
        return p_at(step, h["p_start"], h["p_end"], h["anneal_start"], h["anneal_end"],
                    h["n_updates"])

    def _next_p(self, step: int) -> float:
        """The p the schedule will reach next (the current p once it no longer moves)."""
        h = self.hparams
        i = p_index(step, h["anneal_start"], h["anneal_end"], h["n_updates"])
        nxt = min(i + 1, max(h["n_updates"] - 1, 0))
        return float(h["p_start"] + (h["p_end"] - h["p_start"]) * nxt / max(h["n_updates"], 1))

    @staticmethod
    def lp(codes_NF: torch.Tensor, p: float) -> torch.Tensor:
        """mean over samples of sum over features of codes^p (codes >= 0); zero codes add 0.

        p = 1 is a plain sum (no pow over the code matrix); other p go through :class:`_PowP`,
        one pow per step instead of the two (forward and backward) of ``codes.pow(p)``.
        """
        if p == 1:
            return codes_NF.sum(-1).mean()
        return _PowP.apply(codes_NF, p).sum(-1).mean()

    def penalty(self, codes_NF: torch.Tensor, step: int,
                branch_NF: torch.Tensor | None = None,
                group: SampleGroup = LOCAL) -> torch.Tensor:
        p = self._p(step)
        # Compare in the buffer's precision: float32(0.8) != 0.8 would count as a change of p
        # at every step after the first one and rescale the coefficient every step.
        if torch.tensor(p, dtype=self.p.dtype) != self.p:
            filled = int(self.queue_n)
            if filled:
                old_Q2 = self.queue_Q2[-filled:]
                self.coeff.mul_(old_Q2[:, 0].mean() / old_Q2[:, 1].mean().clamp_min(1e-12))
            self.p.fill_(p)
            self.queue_n.zero_()
        loss = self.lp(codes_NF, p)
        # Only the last ``queue`` steps before a change of p are ever read (the queue empties at
        # each change), so the second L_p (a pow over the code matrix) is skipped elsewhere.
        h = self.hparams
        change = next_p_step(step, h["anneal_start"], h["anneal_end"], h["n_updates"])
        if change is not None and change - step <= self.queue_Q2.shape[0]:
            with torch.no_grad():
                pair = group.mean(torch.stack([loss.detach(),
                                               self.lp(codes_NF, self._next_p(step))]))
                self.queue_Q2.copy_(torch.cat([self.queue_Q2[1:], pair[None]]))
                self.queue_n.clamp_(max=self.queue_Q2.shape[0] - 1).add_(1)
        return self.coeff * sparsity_scale(step, self.hparams["sparsity_warmup"]) * loss


class _PowP(torch.autograd.Function):
    """codes^p for codes >= 0 whose backward reuses the forward power: d/dc c^p = p c^p / c.

    That replaces the second pow over the code matrix (``c.pow(p - 1)``, the slow part of a
    p-annealing step on a CPU) by a division, and gives 0 rather than inf at zero codes.
    """

    @staticmethod
    def forward(ctx, codes_NF: torch.Tensor, p: float) -> torch.Tensor:
        powered_NF = codes_NF.pow(p)
        ctx.save_for_backward(codes_NF, powered_NF)
        ctx.p = p
        return powered_NF

    @staticmethod
    def backward(ctx, grad_NF: torch.Tensor) -> tuple[torch.Tensor, None]:
        codes_NF, powered_NF = ctx.saved_tensors
        tiny = torch.finfo(codes_NF.dtype).tiny  # zero codes: 0 / tiny = 0
        return powered_NF / codes_NF.clamp_min(tiny) * (grad_NF * ctx.p), None


@register("structured")
class Structured(PAnneal):
    """The paper's structured SAE: p-annealing plus alpha * ||Z||_* / sqrt(N) (eq. 6, 91-92).

    ``Z`` is the N x F code matrix of the batch; its nuclear norm is estimated by the sum of its
    top-``rank`` singular values. Dividing by sqrt(N) makes the term independent of the batch
    size (singular values of N i.i.d. rows grow like sqrt(N)); alpha = 0 is plain p-annealing.
    """

    def __init__(self, alpha: float = 0.1, rank: int = 16, seed: int = 0, **panneal: Any):
        super().__init__(**panneal)
        self.hparams.update(alpha=alpha, rank=rank, seed=seed)

    def penalty(self, codes_NF: torch.Tensor, step: int,
                branch_NF: torch.Tensor | None = None,
                group: SampleGroup = LOCAL) -> torch.Tensor:
        return super().penalty(codes_NF, step, group=group) + self.nuclear_term(
            codes_NF, step, group)

    def nuclear_term(self, Z_NF: torch.Tensor, step: int,
                     group: SampleGroup = LOCAL) -> torch.Tensor:
        """alpha * ||Z||_* / sqrt(N), the nuclear norm estimated from the top-``rank`` values
        (Z: the global batch's code matrix, gathered from every rank)."""
        h = self.hparams
        if h["alpha"] == 0:
            return Z_NF.new_zeros(())
        Z_NF = group.cat_rows(Z_NF)
        nuclear = nuclear_norm_estimate(Z_NF, h["rank"], seed=h["seed"] * 1_000_003 + step)
        return h["alpha"] * nuclear / math.sqrt(Z_NF.shape[0])


@register("adapter")
class Adapter(Structured):
    """The structured SAE as an adapter branch (our reading of appendix H.3's "p-annealing-LoRa
    SAE", informed by a public training script of that name; assumptions in the chapter):

    codes = ReLU(pre) + ReLU((x - b_pre) W_ad + b_ad), decoded by the one decoder; the L_p^p
    penalty of p-annealing acts on the first (sparse) part, and alpha * ||Z_ad||_* / sqrt(N) on
    the adapter's N x F code matrix, pushing the adapter towards a low-rank update. W_ad starts
    as a random matrix a tenth the size of the encoder's (a zero start would leave the ReLU
    branch without gradient), b_ad at zero.
    """

    def __init__(self, alpha: float = 0.1, rank: int = 16, seed: int = 0, d_model: int = 0,
                 n_features: int = 0, **panneal: Any):
        super().__init__(alpha=alpha, rank=rank, seed=seed, **panneal)
        self.hparams.update(d_model=d_model, n_features=n_features)
        gen = torch.Generator().manual_seed(seed + 104_729)
        self.W_ad_DF = nn.Parameter(0.1 * torch.randn(d_model, n_features, generator=gen)
                                    / math.sqrt(max(d_model, 1)))
        self.b_ad_F = nn.Parameter(torch.zeros(n_features))

    def branch(self, centred_ND: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b_ad_F, centred_ND, self.W_ad_DF).relu()

    def penalty(self, codes_NF: torch.Tensor, step: int,
                branch_NF: torch.Tensor | None = None,
                group: SampleGroup = LOCAL) -> torch.Tensor:
        sparse = PAnneal.penalty(self, codes_NF, step, group=group)  # L_p^p on sparse codes
        return sparse if branch_NF is None else sparse + self.nuclear_term(branch_NF, step,
                                                                           group)


@torch.no_grad()
def geometric_median(x_ND: torch.Tensor, iterations: int = 100, tol: float = 1e-6
                     ) -> torch.Tensor:
    """The point minimising the summed Euclidean distance to the rows (Weiszfeld's algorithm,
    started from the mean; each step a mean weighted by inverse distances)."""
    point = x_ND.mean(0)
    for _ in range(iterations):
        weights = 1.0 / (x_ND - point).norm(dim=1).clamp_min(1e-8)
        new = (weights[:, None] * x_ND).sum(0) / weights.sum()
        if (new - point).norm() <= tol * point.norm().clamp_min(1e-8):
            return new
        point = new
    return point


class _Encode(torch.autograd.Function):
    """(x - b_pre) W_enc + b_enc, with a backward pass that skips the inputs' gradient.

    Autograd would form the B x D gradient of the centred inputs (a matrix product as large as
    the encoder's) only to sum it over the batch for b_pre; here b_pre's gradient is a
    matrix-vector product, W_enc's the one matrix product, and the inputs' gradient is formed
    only when they need one. The forward pass is the plain one, so the codes are unchanged."""

    @staticmethod
    def forward(ctx, x_ND, b_pre_D, W_enc_DF, b_enc_F):
        centred_ND = x_ND - b_pre_D
        ctx.save_for_backward(centred_ND, W_enc_DF)
        return torch.addmm(b_enc_F, centred_ND, W_enc_DF)

    @staticmethod
    def backward(ctx, grad_NF):
        centred_ND, W_enc_DF = ctx.saved_tensors
        grad_b_enc_F = grad_NF.sum(0)
        grad_x_ND = grad_NF @ W_enc_DF.T if ctx.needs_input_grad[0] else None
        grad_W_DF = centred_ND.T @ grad_NF if ctx.needs_input_grad[2] else None
        return grad_x_ND, -(W_enc_DF @ grad_b_enc_F), grad_W_DF, grad_b_enc_F


# --------------------------------------------------------------------------- autoencoder
class SparseAutoencoder(nn.Module):
    """x -> codes -> x_hat with a pre-encoder bias, unit-norm decoder rows and a mechanism.

    ``input_scale`` (a buffer) multiplies inputs before encoding and divides reconstructions
    after decoding, so callers work in the model's units while training sees inputs of mean
    squared norm D (set by :meth:`fit_normalisation`). Codes are in the normalised units.
    """

    def __init__(self, d_model: int, n_features: int, mechanism: str = "topk",
                 hparams: dict[str, Any] | None = None, seed: int = 0):
        super().__init__()
        if mechanism not in MECHANISMS:
            raise ValueError(f"sparsity mechanism {mechanism!r} is not registered; choose one "
                             f"of {', '.join(MECHANISMS)}")
        hparams = dict(hparams or {})
        if mechanism == "adapter":  # the adapter's encoder has the SAE's shape
            hparams.update(d_model=d_model, n_features=n_features)
        self.config = {"d_model": d_model, "n_features": n_features, "mechanism": mechanism,
                       "hparams": hparams, "seed": seed}
        self.mechanism = MECHANISMS[mechanism](**hparams)
        gen = torch.Generator().manual_seed(seed)
        W_dec_FD = torch.randn(n_features, d_model, generator=gen)
        W_dec_FD /= W_dec_FD.norm(dim=1, keepdim=True)
        self.W_dec_FD = nn.Parameter(W_dec_FD)
        self.W_enc_DF = nn.Parameter(W_dec_FD.T.clone())  # tied at start, trained apart
        self.b_enc_F = nn.Parameter(torch.zeros(n_features))
        self.b_pre_D = nn.Parameter(torch.zeros(d_model))
        self.register_buffer("input_scale", torch.tensor(1.0))

    @torch.no_grad()
    def fit_normalisation(self, sample_ND: torch.Tensor, b_pre_init: str = "mean") -> None:
        """Set ``input_scale`` so scaled inputs have mean squared norm D, and ``b_pre`` to the
        scaled sample's ``mean`` or ``geometric_median`` (the reference top-k trainers')."""
        x = sample_ND.float()
        self.input_scale.fill_(math.sqrt(x.shape[1] / x.pow(2).sum(1).mean().item()))
        if b_pre_init not in ("mean", "geometric_median"):
            raise ValueError(f"b_pre_init {b_pre_init!r} is not 'mean' or 'geometric_median'")
        xn = x * self.input_scale
        self.b_pre_D.copy_(xn.mean(0) if b_pre_init == "mean" else geometric_median(xn))

    def pre_activations(self, xn_ND: torch.Tensor) -> torch.Tensor:
        """Encoder output before the mechanism, from normalised inputs: (x - b_pre) W_enc + b_enc."""
        return _Encode.apply(xn_ND, self.b_pre_D, self.W_enc_DF, self.b_enc_F)

    def decode_normalised(self, codes_NF: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b_pre_D, codes_NF, self.W_dec_FD)

    def codes(self, xn_ND: torch.Tensor, training: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(codes, branch)`` of normalised inputs: the mechanism's codes (its training ones if
        ``training``) plus its branch's when it has one, and the branch's codes alone (or None)."""
        pre_NF = self.pre_activations(xn_ND)
        own_NF = self.mechanism.train_codes(pre_NF) if training else self.mechanism(pre_NF)
        branch_NF = self.mechanism.branch(xn_ND - self.b_pre_D)
        return (own_NF if branch_NF is None else own_NF + branch_NF), branch_NF

    def encode(self, x_ND: torch.Tensor) -> torch.Tensor:
        """Inference codes of inputs in model units."""
        return self.codes(x_ND * self.input_scale)[0]

    def decode(self, codes_NF: torch.Tensor) -> torch.Tensor:
        """Reconstruction in model units."""
        return self.decode_normalised(codes_NF) / self.input_scale

    def forward(self, x_ND: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x_ND))

    @torch.no_grad()
    def normalise_decoder(self) -> None:
        """Put every decoder row back on the unit sphere (after an optimiser step)."""
        self.W_dec_FD /= self.W_dec_FD.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove the part of each decoder row's gradient along the row (it only changes norms)."""
        g, w = self.W_dec_FD.grad, self.W_dec_FD
        if g is not None:
            g -= (g * w).sum(1, keepdim=True) * w

    def save(self, directory: str | Path) -> Path:
        """Write ``cfg.json`` (sizes, mechanism name, hyperparameters) and ``sae.safetensors``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cfg.json").write_text(json.dumps(self.config, indent=1, sort_keys=True))
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / "sae.safetensors"))
        return directory


def load_sae(directory: str | Path, device: str | torch.device = "cpu") -> SparseAutoencoder:
    """Rebuild a saved SAE, its mechanism state (threshold, p, coefficient) and normalisation."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = json.loads((directory / "cfg.json").read_text())
    sae = SparseAutoencoder(**config)
    sae.load_state_dict(load_file(str(directory / "sae.safetensors")), strict=True)
    return sae.to(device)

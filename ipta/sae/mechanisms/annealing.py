"""The p-annealing family: p-annealing (Karvonen et al. 2024), the paper's structured SAE
(p-annealing plus a nuclear norm, eq. 6 and 91-92) and its adapter reading (appendix H.3)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ipta.sae.config import Config
from ipta.sae.distributed import LOCAL, SampleGroup
from ipta.sae.mechanisms import Mechanism, register
from ipta.sae.schedules import next_p_step, p_at, p_index, sparsity_scale


def nuclear_norm_estimate(codes_NF: torch.Tensor, rank: int, oversample: int = 4,
                          niter: int = 2, seed: int = 0) -> torch.Tensor:
    """Sum of the top-``rank`` singular values of ``codes_NF`` via ``torch.svd_lowrank`` (eq. 92).

    ``svd_lowrank`` draws a random test matrix from the global generator; it runs inside a forked
    RNG seeded with ``seed``, so the estimate is reproducible (and a resumed run equals an
    uninterrupted one) while the caller's random state is left untouched.

    Differentiable without differentiating the factorisation: the (sub)gradient of the sum of the
    top-r singular values of Z is U_r V_r^T, applied by :class:`_TopSingularSum` from the
    factors the forward pass found. Back-propagating through the randomised SVD instead (QR and a
    small SVD backward every step) cost the structured SAE nearly three times p-annealing's step.
    """
    q = min(rank + oversample, *codes_NF.shape)
    return _TopSingularSum.apply(codes_NF, rank, q, niter, seed)


class _TopSingularSum(torch.autograd.Function):
    """sum(s_1..s_r) of a matrix; backward: the gradient times U_r V_r^T."""

    @staticmethod
    def forward(ctx, codes_NF: torch.Tensor, rank: int, q: int, niter: int, seed: int
                ) -> torch.Tensor:
        devices = [codes_NF.device] if codes_NF.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            U_Nq, s_q, V_Fq = torch.svd_lowrank(codes_NF, q=q, niter=niter)
        ctx.save_for_backward(U_Nq[:, :rank], V_Fq[:, :rank])
        return s_q[:rank].sum()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        U_Nr, V_Fr = ctx.saved_tensors
        return grad * (U_Nr @ V_Fr.T), None, None, None, None


@register("panneal")
class PAnneal(Mechanism):
    """ReLU codes with penalty coeff * warm-up * mean_n sum_f codes^p, p annealed 1 -> towards 0.

    When p steps down, the coefficient is multiplied by mean(L_p^p) / mean(L_p'^p') over the
    last ``queue`` batches, so the penalty's size is continuous across the step.
    """

    label = "p-annealing"

    def __init__(self, initial_penalty: float = 0.1, p_start: float = 1.0, p_end: float = 0.0,
                 anneal_start: int = 0, anneal_end: int = 1000, n_updates: int = 10,
                 sparsity_warmup: int = 400, queue: int = 10, target_l0: float = 0.0):
        super().__init__(initial_penalty=initial_penalty, p_start=p_start, p_end=p_end,
                         anneal_start=anneal_start, anneal_end=anneal_end, n_updates=n_updates,
                         sparsity_warmup=sparsity_warmup, queue=queue, target_l0=target_l0)
        self.register_buffer("coeff", torch.tensor(float(initial_penalty)))
        self.register_buffer("p", torch.tensor(float(p_start)))
        # Recent (L_p^p at the current p, at the next p) pairs and how many slots are filled.
        self.register_buffer("queue_Q2", torch.zeros(queue, 2))
        self.register_buffer("queue_n", torch.tensor(0, dtype=torch.long))

    @classmethod
    def hparams_from(cls, cfg: Config, *, seed: int, alpha: float, k: int) -> dict[str, Any]:
        """p steps from 1 towards ``cfg.p_end`` from ``cfg.anneal_start`` of the way through
        training to its last step; the penalty warms up over ``cfg.sparsity_warmup_steps``."""
        return {"initial_penalty": cfg.initial_penalty, "p_start": 1.0, "p_end": cfg.p_end,
                "anneal_start": int(cfg.anneal_start * cfg.steps), "anneal_end": cfg.steps - 1,
                "n_updates": cfg.n_p_updates, "sparsity_warmup": cfg.sparsity_warmup_steps,
                "target_l0": cfg.target_l0}

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
        if h["target_l0"] > 0 and step >= h["sparsity_warmup"]:
            self._steer(codes_NF, group)
        return self.coeff * sparsity_scale(step, self.hparams["sparsity_warmup"]) * loss

    TARGET_RATE = 0.01
    """How fast the coefficient follows ``target_l0``, per step and per unit of
    log(L0 / target): a batch at twice the target raises it by 0.7%, one at half the target lowers
    it by 0.7%."""

    TARGET_CAP = 0.01
    """The largest change of the coefficient in one step (1%): early on, ReLU codes are dense
    and the L0 lags the coefficient by many steps, so an uncapped rate overshoots."""

    @torch.no_grad()
    def _steer(self, codes_NF: torch.Tensor, group: SampleGroup) -> None:
        """Multiply the coefficient by (L0 / target)^rate, capped at 1% a step, L0 over the
        global batch, so that the training L0 settles at ``target_l0`` whatever p has reached:
        the same sparsity for every variant compared, which a fixed lambda_0 chosen for one
        length of training does not give at another (our addition; 0 turns it off).

        The rule is symmetric in log(L0 / target): above the target it raises the coefficient
        exactly as fast as it lowers it below. An earlier rule, linear in (L0 - target) / target,
        raised it by up to 10% a step while the codes were dense but lowered it by at most 1%;
        it killed most of the dictionary before L0 came down, and dead features get no gradient
        to return (the long setting of 2026-12-03)."""
        target = self.hparams["target_l0"]
        l0 = group.mean((codes_NF > 0).float().sum(-1).mean())
        step = (self.TARGET_RATE * torch.log(l0.clamp_min(1e-3) / target)).clamp(
            -self.TARGET_CAP, self.TARGET_CAP)
        self.coeff.mul_(torch.exp(step))


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

    label = "structured"
    uses_alpha = True
    without_alpha = "panneal"

    def __init__(self, alpha: float = 0.1, rank: int = 16, seed: int = 0, **panneal: Any):
        super().__init__(**panneal)
        self.hparams.update(alpha=alpha, rank=rank, seed=seed)

    @classmethod
    def hparams_from(cls, cfg: Config, *, seed: int, alpha: float, k: int) -> dict[str, Any]:
        return {**super().hparams_from(cfg, seed=seed, alpha=alpha, k=k), "alpha": alpha,
                "rank": cfg.rank, "seed": seed}

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

    label = "structured (adapter)"

    def __init__(self, alpha: float = 0.1, rank: int = 16, seed: int = 0, d_model: int = 0,
                 n_features: int = 0, **panneal: Any):
        super().__init__(alpha=alpha, rank=rank, seed=seed, **panneal)
        self.hparams.update(d_model=d_model, n_features=n_features)
        gen = torch.Generator().manual_seed(seed + 104_729)
        self.W_ad_DF = nn.Parameter(0.1 * torch.randn(d_model, n_features, generator=gen)
                                    / math.sqrt(max(d_model, 1)))
        self.b_ad_F = nn.Parameter(torch.zeros(n_features))

    @classmethod
    def with_shape(cls, hparams, d_model, n_features):
        """The adapter's encoder has the SAE's shape."""
        return {**hparams, "d_model": d_model, "n_features": n_features}

    def branch(self, centred_ND: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b_ad_F, centred_ND, self.W_ad_DF).relu()

    def penalty(self, codes_NF: torch.Tensor, step: int,
                branch_NF: torch.Tensor | None = None,
                group: SampleGroup = LOCAL) -> torch.Tensor:
        sparse = PAnneal.penalty(self, codes_NF, step, group=group)  # L_p^p on sparse codes
        return sparse if branch_NF is None else sparse + self.nuclear_term(branch_NF, step,
                                                                           group)

    def saelens(self, tensors, input_scale):
        """ReLU(sparse) + ReLU(adapter): 2F ReLU features, the sparse encoder's then the
        adapter's, each pair sharing one decoder row (our code is their sum)."""
        tensors["W_enc"] = torch.cat([tensors["W_enc"],
                                      self.W_ad_DF.detach().double() * input_scale], dim=1)
        tensors["b_enc"] = torch.cat([tensors["b_enc"], self.b_ad_F.detach().double()])
        tensors["W_dec"] = torch.cat([tensors["W_dec"], tensors["W_dec"]])
        return {"architecture": self.saelens_architecture}

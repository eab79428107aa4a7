"""The next-token model of section 3 (Eq. 2), trained against the exact p(y|x).

The model is ``q(y|x) = softmax_y f(x)^T g(y)``: a representation ``f(x)`` of the context and
one unembedding vector ``g(y)`` per token, with no bias, as in Eq. (2).  No bias is needed: at
the optimum ``f(x)^T g(y) = log p(y|x) + c(x)``, and for generic p the matrix on the right can
be matched exactly once the width is ``d >= |Y| - 1`` (the free ``c(x)`` absorbs one rank).

Training minimises the cross-entropy to the exact ``p(y|x)`` averaged uniformly over contexts
(not weighted by p(x)): the optimum is the same, because it can be matched context by context,
and rare contexts would otherwise barely move.  Several independent problems of the same shape
are trained together in one batch (leading axis S), which is much faster on a CPU than a loop.
"""

from __future__ import annotations

import numpy as np
import torch
from ipta.progress import bar

from ipta.devices import torch_threads
from ipta.latent.dag import all_configs


def _encoder(kind: str, n_settings: int, n_bits: int, width: int, gen: torch.Generator
             ) -> tuple[list[torch.Tensor], callable]:
    """Parameters and forward function of f for all S problems: a table or a 2-layer MLP."""
    x_XM = torch.tensor(all_configs(n_bits), dtype=torch.float64)
    n_x = x_XM.shape[0]
    if kind == "table":
        f_SXD = (0.1 * torch.randn(n_settings, n_x, width, generator=gen,
                                   dtype=torch.float64)).requires_grad_()
        return [f_SXD], lambda: f_SXD
    hidden = 128
    w1 = (torch.randn(n_settings, n_bits, hidden, generator=gen, dtype=torch.float64)
          / n_bits**0.5).requires_grad_()
    b1 = torch.zeros(n_settings, 1, hidden, dtype=torch.float64, requires_grad=True)
    w2 = (torch.randn(n_settings, hidden, width, generator=gen, dtype=torch.float64)
          / hidden**0.5).requires_grad_()
    return [w1, b1, w2], lambda: torch.tanh(torch.einsum("xm,smh->sxh", 2 * x_XM - 1, w1)
                                            + b1) @ w2


def train_next_token(pred_SXY: np.ndarray, p_SX: np.ndarray, width: int, *, steps: int,
                     lr: float, encoder: str = "table", seed: int = 0, progress: bool = True
                     ) -> dict[str, np.ndarray]:
    """Fit f and g by cross-entropy to the exact ``p(y|x)`` (one problem per leading index).

    Returns ``f_SXD``, ``g_SYD``, the trained ``q_SXY``, the gap to the optimum as KL(p || q)
    averaged under p(x) (``kl_S``) and its worst context (``kl_max_S``), and the loss curve.
    """
    gen = torch.Generator().manual_seed(seed)
    n_settings, n_x, n_y = pred_SXY.shape
    n_bits = int(np.log2(n_x))
    target = torch.tensor(pred_SXY, dtype=torch.float64)
    entropy_S = -(target * torch.log(target)).sum(2).mean(1)
    params, encode = _encoder(encoder, n_settings, n_bits, width, gen)
    g_SYD = (0.1 * torch.randn(n_settings, n_y, width, generator=gen,
                               dtype=torch.float64)).requires_grad_()
    opt = torch.optim.Adam(params + [g_SYD], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    curve = np.zeros(steps)
    with torch_threads(1):
        for step in bar(range(steps), disable=not progress, desc="next-token model",
                             mininterval=10):
            logq_SXY = torch.log_softmax(encode() @ g_SYD.transpose(1, 2), dim=2)
            # Cross-entropy minus the entropy of p: the mean KL, so 0 is the exact optimum.
            kl_S = -(target * logq_SXY).sum(2).mean(1) - entropy_S
            opt.zero_grad()
            kl_S.sum().backward()
            opt.step()
            sched.step()
            curve[step] = kl_S.detach().mean().item()
    with torch.no_grad():
        f_SXD = encode()
        logq_SXY = torch.log_softmax(f_SXD @ g_SYD.transpose(1, 2), dim=2)
    # Clipped at 0: at the optimum rounding leaves values of order -1e-17.
    kl_SX = (target * (torch.log(target) - logq_SXY)).sum(2).clamp(min=0).numpy()
    return {"f_SXD": f_SXD.detach().numpy(), "g_SYD": g_SYD.detach().numpy(),
            "q_SXY": logq_SXY.exp().numpy(), "kl_S": (kl_SX * p_SX).sum(1),
            "kl_max_S": kl_SX.max(1), "curve": curve}

"""One sparse autoencoder for every variant (paper section 5, appendix H.1).

The autoencoder is the same for every variant: inputs are rescaled by a stored scalar (input
normalisation), a pre-encoder bias ``b_pre`` is subtracted, a linear encoder gives
pre-activations, a *sparsity mechanism* turns them into codes, and a decoder whose rows
(one per feature) are kept at unit norm maps the codes back, adding ``b_pre`` again. The
mechanism is looked up by name in :data:`ipta.sae.mechanisms.MECHANISMS`; it keeps all its
state in buffers, so the safetensors file of :meth:`SparseAutoencoder.save` restores inference
behaviour exactly and :func:`load_sae` needs no branch on the variant.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ipta.sae.mechanisms import MECHANISMS


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
        hparams = MECHANISMS[mechanism].with_shape(dict(hparams or {}), d_model, n_features)
        self.config = {"d_model": d_model, "n_features": n_features, "mechanism": mechanism,
                       "hparams": hparams, "seed": seed}
        self.mechanism = MECHANISMS[mechanism](**hparams)
        gen = torch.Generator().manual_seed(seed)
        W_dec_FD = torch.randn(n_features, d_model, generator=gen)
        W_dec_FD /= W_dec_FD.norm(dim=1, keepdim=True)
        self.W_dec_FD = nn.Parameter(W_dec_FD)
        # Tied at start, trained apart; stored row-major (a clone of the transpose would keep its
        # column-major strides, and every step would then copy the gradient into that layout).
        self.W_enc_DF = nn.Parameter(W_dec_FD.T.contiguous())
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

"""The one training loop for every SAE variant (paper appendix H.3), with exact resume.

Settings stated by the paper: Adam, a linear learning-rate warm-up over the first 200 steps,
20,000 steps of batch 10,000 (the ``paper`` profile). Variants differ only in the mechanism of
:mod:`ipta.sae.model`, which supplies the training codes, the penalty and its own state updates.

Checkpoints hold everything the next step depends on (weights, mechanism buffers, Adam moments,
the batch sampler's generator state, the dead-latent counters and the history), so a run killed
mid-way and started again with the same arguments ends with the same weights, bit for bit on a
CPU, as one that was never interrupted.

Under torchrun (``torch.distributed`` initialised before the call) the same loop trains one SAE
over every process with DistributedDataParallel: each rank reads its rows of the global batch,
the terms that need the whole batch go through :mod:`ipta.sae.distributed`, rank 0 alone
evaluates and writes checkpoints, and every rank resumes from the same one. The result equals a
single process with the same global batch, to float rounding.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from ipta.cache import move_aside
from ipta.integrity import check_folder, write_manifest
from ipta.sae.distributed import SampleGroup
from ipta.sae.model import SparseAutoencoder, load_sae
from ipta.sae.schedules import lr_scale


class ActivationSource(Protocol):
    """What the loop needs from the data: random batches drawn with a given generator; ``rows``
    picks a part of the batch (the draws, and so the generator's state, do not depend on it)."""

    def sample(self, generator: torch.Generator, n: int,
               rows: slice = slice(None)) -> torch.Tensor: ...


KEEP_CHECKPOINTS = 2
"""Checkpoints kept per run: the newest, and the one to fall back on if it is damaged."""


def _checkpoints(directory: Path) -> list[Path]:
    return sorted(directory.glob("step_*"))


def _save_checkpoint(directory: Path, step: int, sae: SparseAutoencoder,
                     opt: torch.optim.Optimizer, gen: torch.Generator,
                     tokens_since_fired_F: torch.Tensor, history: list[dict[str, Any]],
                     settings: dict[str, Any]) -> None:
    """Write ``step_XXXXXXXX/`` atomically (a temporary folder with its manifest, then a
    rename); keep the newest :data:`KEEP_CHECKPOINTS`."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step:08d}"
    tmp = directory / f".tmp_step_{step:08d}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    sae.save(tmp / "sae")
    tensors = {"generator": gen.get_state(), "tokens_since_fired": tokens_since_fired_F.cpu()}
    for i, state in opt.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"opt.{i}.{name}"] = value.detach().cpu().contiguous()
    save_file(tensors, str(tmp / "trainer.safetensors"))
    (tmp / "trainer.json").write_text(json.dumps(
        {"step": step, "settings": settings, "history": history}, indent=1))
    write_manifest(tmp)
    try:
        os.rename(tmp, final)
    except OSError:  # the same step, written meanwhile by another run of the same settings
        shutil.rmtree(tmp, ignore_errors=True)
    for old in _checkpoints(directory)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)


def _set_aside_damaged(directory: Path) -> None:
    """Check the checkpoints in ``directory``, newest first, against their manifests, moving
    each damaged one aside with a warning until a sound one is found; so a torn or corrupted
    file costs the steps since the checkpoint before it."""
    for path in reversed(_checkpoints(directory)):
        problem = check_folder(path)
        if problem is None:
            return
        earlier = [p for p in _checkpoints(directory) if p < path]
        move_aside(path, problem, f"resuming from {earlier[-1].name}" if earlier
                   else "training starts afresh")


def _resume(directory: Path, sae: SparseAutoencoder, opt: torch.optim.Optimizer,
            gen: torch.Generator, settings: dict[str, Any], group: SampleGroup
            ) -> tuple[int, torch.Tensor, list[dict[str, Any]]] | None:
    """Load the newest sound checkpoint in ``directory``; ``None`` when there is none. Rank 0
    alone checks them, then every rank loads the same one."""
    if group.rank == 0:
        _set_aside_damaged(directory)
    group.barrier()
    newest = _checkpoints(directory)[-1:]
    return _load_checkpoint(newest[0], sae, opt, gen, settings) if newest else None


def _load_checkpoint(path: Path, sae: SparseAutoencoder, opt: torch.optim.Optimizer,
                     gen: torch.Generator, settings: dict[str, Any]
                     ) -> tuple[int, torch.Tensor, list[dict[str, Any]]]:
    from safetensors.torch import load_file

    meta = json.loads((path / "trainer.json").read_text())
    if meta["settings"] != settings:
        raise ValueError(f"checkpoint {path} was written with other settings "
                         f"({meta['settings']}); remove it or use another checkpoint folder")
    device = sae.W_dec_FD.device
    sae.load_state_dict(load_sae(path / "sae").state_dict())
    tensors = load_file(str(path / "trainer.safetensors"))
    gen.set_state(tensors["generator"])
    params = [p for group in opt.param_groups for p in group["params"]]
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, i, name = key.split(".", 2)
            # Each moment in its parameter's memory layout, as the optimizer made it: the fused
            # kernel pairs elements by their place in memory, so a moment saved contiguous and
            # restored beside a parameter with other strides (a transpose, say) would be paired
            # with the wrong weights.
            state.setdefault(int(i), {})[name] = value if name == "step" else torch.empty_like(
                params[int(i)]).copy_(value)
    opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
    return meta["step"], tensors["tokens_since_fired"].to(device), meta["history"]


def fit_normalisation(sae: SparseAutoencoder, data: ActivationSource, seed: int,
                      n: int = 4096, b_pre_init: str = "mean") -> None:
    """The input scale and pre-encoder bias of ``sae`` from ``n`` training activations.

    They come from their own stream (``seed + 1``), so the training batches do not depend on how
    many samples were used here, and an untrained control starts exactly where training does."""
    norm_gen = torch.Generator().manual_seed(seed + 1)
    sae.fit_normalisation(data.sample(norm_gen, n).to(sae.W_dec_FD.device), b_pre_init)


class TrainingStep(torch.nn.Module):
    """The forward pass of one training step as a module, the unit DistributedDataParallel
    wraps: returns the loss, the reconstruction error, the mechanism's own codes (for its
    ``observe``) and which features fired in this batch."""

    def __init__(self, sae: SparseAutoencoder, group: SampleGroup):
        super().__init__()
        self.sae, self.group = sae, group

    def forward(self, xn_ND: torch.Tensor, step: int, dead_F: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        sae, mech, group = self.sae, self.sae.mechanism, self.group
        pre_NF = sae.pre_activations(xn_ND)
        branch_NF = mech.branch(xn_ND - sae.b_pre_D)
        pairs = mech.sparse_train_codes(pre_NF) if branch_NF is None else None
        if pairs is not None:
            # K codes per sample: decoding reads K decoder rows per sample instead of a dense
            # N x F by F x D product, and so do the gradients (about 3x faster at K = 32 of
            # F = 2048); the sums run in another order, so results agree to float rounding.
            own, feature_NK = pairs
            xhat_ND = sae.b_pre_D + torch.nn.functional.embedding_bag(
                feature_NK, sae.W_dec_FD, per_sample_weights=own, mode="sum")
            fired_F = torch.zeros_like(dead_F).index_fill_(0, feature_NK[own > 0], True)
        else:
            own = mech.train_codes(pre_NF, group)
            codes_NF = own if branch_NF is None else own + branch_NF
            xhat_ND = sae.decode_normalised(codes_NF)
            fired_F = codes_NF.amax(0) > 0  # codes are >= 0
        recon = (xhat_ND - xn_ND).pow(2).sum(-1).mean()
        loss = recon + mech.penalty(own, step, branch_NF, group) + mech.aux_loss(
            pre_NF, (xn_ND - xhat_ND).detach(), dead_F, sae.W_dec_FD, group)
        return loss, recon, own, fired_F


def _distributed(step_module: TrainingStep, group: SampleGroup) -> torch.nn.Module:
    """``step_module`` wrapped in DistributedDataParallel when several ranks share the batch.

    Buffers are synchronised once, at the start, not at every step: every rank updates them
    from the same global values."""
    if group.size == 1:
        return step_module
    from torch.nn.parallel import DistributedDataParallel

    device = step_module.sae.W_dec_FD.device
    return DistributedDataParallel(step_module, forward_sync_buffers=False,
                                   device_ids=[device] if device.type == "cuda" else None)


def train_sae(sae: SparseAutoencoder, data: ActivationSource, *, steps: int, batch_size: int,
              lr: float, warmup_steps: int = 200, seed: int = 0, n_normalisation: int = 4096,
              dead_after_tokens: int = 1_000_000, b_pre_init: str = "mean",
              grad_clip: float = 0.0,
              evaluate: Callable[[SparseAutoencoder], dict[str, float]] | None = None,
              eval_every: int = 100, checkpoint_dir: str | Path | None = None,
              checkpoint_every: int = 0, progress: bool = True) -> list[dict[str, Any]]:
    """Train ``sae`` in place for ``steps`` Adam steps; return the history (one row per eval).

    Each row has ``step``, the training ``loss`` and ``recon`` (squared error per sample in
    normalised units) of that step, ``dead_fraction_train`` (features silent for the last
    ``dead_after_tokens`` training tokens) and whatever ``evaluate(sae)`` returns, computed
    every ``eval_every`` steps and at the end. With ``checkpoint_dir`` set, a checkpoint is
    written every ``checkpoint_every`` steps and at the end, and a run finding one there
    resumes from it. ``b_pre_init``: the pre-encoder bias starts at the mean or the geometric
    median of the normalised sample; ``grad_clip`` > 0 clips the gradient's global norm after
    the decoder's parallel component is removed (the reference trainers clip at 1).

    Under torchrun, ``batch_size`` is the global batch (a multiple of the number of processes);
    only rank 0 evaluates, writes checkpoints and returns the full history.
    """
    from ipta.progress import bar

    group = SampleGroup.current()
    rows = group.rows(batch_size)
    device = sae.W_dec_FD.device
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "warmup_steps": warmup_steps,
                "seed": seed, "sae": sae.config, "b_pre_init": b_pre_init,
                "grad_clip": grad_clip}
    gen = torch.Generator().manual_seed(seed)  # draws the batches; saved in checkpoints
    # fused: Adam's update as one pass over each tensor (0.9 ms a step against 6.1 ms for the
    # multi-tensor foreach kernels, and far more for the default loop, at the chapter's shapes on
    # one CPU thread). It walks parameter, gradient and moments as flat memory, so a resumed
    # run restores each moment in its parameter's layout (:func:`_load_checkpoint`).
    opt = torch.optim.Adam(sae.parameters(), lr=lr, fused=True)
    tokens_since_fired_F = torch.zeros(sae.config["n_features"], dtype=torch.long, device=device)
    history: list[dict[str, Any]] = []
    start = 0
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    resumed = _resume(ckpt_dir, sae, opt, gen, settings, group) if ckpt_dir else None
    if resumed is not None:
        start, tokens_since_fired_F, history = resumed
    else:
        fit_normalisation(sae, data, seed, n_normalisation, b_pre_init)
    training_step = _distributed(TrainingStep(sae, group), group)
    lead = group.rank == 0  # evaluates and writes checkpoints

    pbar = bar(range(start, steps), desc=f"SAE {sae.config['mechanism']}",
               disable=not (progress and lead), initial=start, total=steps, leave=False)
    for step in pbar:
        for param_group in opt.param_groups:
            param_group["lr"] = lr * lr_scale(step, warmup_steps)
        xn_ND = data.sample(gen, batch_size, rows=rows).to(device) * sae.input_scale
        loss, recon, own, fired_F = training_step(
            xn_ND, step, tokens_since_fired_F >= dead_after_tokens)

        opt.zero_grad(set_to_none=True)
        loss.backward()  # under DDP, gradients arrive averaged over the ranks
        sae.project_decoder_grad()  # the unit-norm constraint: only directions may change
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(sae.parameters(), grad_clip)
        opt.step()
        sae.normalise_decoder()
        sae.mechanism.observe(own.detach(), step)

        # Dead-latent accounting: tokens seen since each feature last fired.
        tokens_since_fired_F += batch_size
        tokens_since_fired_F.masked_fill_(group.any(fired_F), 0)

        done = step + 1
        if evaluate is not None and (done % eval_every == 0 or done == steps):
            mean_loss, mean_recon = group.mean(torch.stack([loss.detach(),
                                                            recon.detach()])).tolist()
            if lead:
                row = {"step": done, "loss": mean_loss, "recon": mean_recon,
                       "dead_fraction_train":
                           (tokens_since_fired_F >= dead_after_tokens).float().mean().item()}
                with torch.no_grad():
                    row.update(evaluate(sae))
                history.append(row)
                pbar.set_postfix(loss=f"{row['loss']:.3g}")
        if ckpt_dir is not None and checkpoint_every and (done % checkpoint_every == 0
                                                          or done == steps):
            if lead:
                _save_checkpoint(ckpt_dir, done, sae, opt, gen, tokens_since_fired_F, history,
                                 settings)
            group.barrier()  # no rank runs ahead of the checkpoint it would resume from
    return history

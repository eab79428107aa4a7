"""The masked next-token MLP of appendix G.1, trained one run at a time or all runs at once.

Task (G.1): one observed variable per sample is masked, chosen uniformly at random afresh for
every sample; the network sees every observed position as a token in {0, 1, masked}, sums their
embeddings (a position-and-state embedding: the embedding layer G.1 applies to the values and
the mask), passes that through ``n_layers`` blocks of Linear -> BatchNorm -> ReLU of width
``hidden`` and predicts every position's bit with a linear head; the loss is the cross-entropy of
the masked position only.  Adam; fresh samples every step.

Speed: all runs of a sweep train as one stacked model: every weight carries a leading run axis
``S`` (``torch.bmm``), and BatchNorm is computed per run over that run's own batch.  Settings
with different m are padded to the largest m: padded positions have all-zero one-hot blocks in
the input and are never masked, so their weights get zero gradients and stay zero under Adam;
a padded run computes exactly what the unpadded one does.  :func:`train_single` is the plain
one-model-at-a-time reference that the tests and the benchmark compare against.

``cfg`` is the chapter's :class:`~ipta.simulations.config.Config`; ``problem``
an :class:`ipta.simulations.problems.Problem`.
"""

from __future__ import annotations

import math

import numpy as np

from ipta.devices import torch_threads
from ipta.simulations.config import Config

MASKED = 2
"""Token state of the masked position (0 and 1 are the observed bit values)."""


# Torch threads of each training path.  Measured on the shared 2-core machine (load 5-6) at the
# default sweep's shapes (105 runs, batch 64): all runs at once took 240 ms/step at width 128 on
# one thread against 900 ms on two, and one run at a time 3 ms/step per run on one thread
# against 22 ms on two; at width 256 the same order (500 against 1300, 5 against 45).  The
# operations are too small, and the cores too busy, for a second thread to pay off in either
# path, so both default to one; benchmarks/bench_simulations.py re-measures 1 and 2 threads for
# each path and compares each at its best.
BATCHED_THREADS = 1
SINGLE_THREADS = 1


def _torch_generator(words: list[int]) -> "torch.Generator":
    import torch

    return torch.Generator().manual_seed(int(np.random.SeedSequence(words).generate_state(1)[0]))


def init_params(setting, cfg: Config, n_pad: int) -> dict[str, "torch.Tensor"]:
    """One run's initial weights (torch's default laws), zero-padded from m to ``n_pad`` positions.

    Layout: ``emb`` (3*n_pad, D) rows ``3*j + state``; ``W{l}`` (in, out), no bias (BatchNorm
    follows and would cancel it); ``gamma{l}``/``beta{l}``; ``head_W`` (hidden, n_pad), ``head_b``.
    """
    import torch

    gen = _torch_generator(setting.stream(3))
    m, d, h = setting.n_observed, cfg.embed_dim, cfg.hidden

    def uniform(shape: tuple[int, ...], fan_in: int) -> torch.Tensor:
        return (torch.rand(shape, generator=gen) * 2 - 1) / math.sqrt(fan_in)

    params = {"emb": torch.zeros(3 * n_pad, d)}
    params["emb"][:3 * m] = torch.randn(3 * m, d, generator=gen)
    fan_in = d
    for l in range(cfg.n_layers):
        params[f"W{l}"] = uniform((fan_in, h), fan_in)
        params[f"gamma{l}"], params[f"beta{l}"] = torch.ones(h), torch.zeros(h)
        fan_in = h
    params["head_W"], params["head_b"] = torch.zeros(h, n_pad), torch.zeros(n_pad)
    params["head_W"][:, :m] = uniform((h, m), h)
    params["head_b"][:m] = uniform((m,), h)
    return params


def init_buffers(cfg: Config) -> dict[str, "torch.Tensor"]:
    """BatchNorm running statistics at their initial values (mean 0, variance 1)."""
    import torch

    out = {}
    for l in range(cfg.n_layers):
        out[f"mean{l}"], out[f"var{l}"] = torch.zeros(cfg.hidden), torch.ones(cfg.hidden)
    return out


def stacked_inputs(code_SCM: "torch.Tensor", valid_SM: "torch.Tensor", config_SN: "torch.Tensor",
                   masked_SN: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """``(onehot_SNT, target_SN)``: token one-hots (T = 3M, padded blocks zero) and masked bits."""
    import torch

    n_runs, n, n_pad = config_SN.shape[0], config_SN.shape[1], code_SCM.shape[2]
    obs_SNM = torch.gather(code_SCM, 1, config_SN[:, :, None].expand(-1, -1, n_pad))
    target_SN = torch.gather(obs_SNM, 2, masked_SN[:, :, None])[:, :, 0].float()
    state_SNM = obs_SNM.scatter(2, masked_SN[:, :, None], MASKED)
    onehot = torch.nn.functional.one_hot(state_SNM, 3).float() * valid_SM[:, None, :, None]
    return onehot.reshape(n_runs, n, 3 * n_pad), target_SN


def stacked_features(params: dict, buffers: dict, onehot_SNT: "torch.Tensor", n_layers: int,
                     training: bool, momentum: float = 0.1, eps: float = 1e-5,
                     every_layer: bool = False) -> "torch.Tensor | list[torch.Tensor]":
    """``feats_SNH``: the MLP output of every run, BatchNorm over each run's own batch (with
    ``every_layer``, the list of every block's output, the last one being the MLP output).

    BatchNorm of S runs of width H is one BatchNorm of S*H channels over the N samples, so
    torch's fused kernel does it (and updates the running statistics exactly as BatchNorm1d):
    several times faster than spelling out mean, variance and affine map per run.
    """
    import torch

    h = torch.bmm(onehot_SNT, params["emb"])
    n_runs, n = h.shape[0], h.shape[1]
    outputs = []
    for l in range(n_layers):
        h_SNH = torch.bmm(h, params[f"W{l}"])
        width = h_SNH.shape[2]
        h_NC = torch.nn.functional.batch_norm(
            h_SNH.transpose(0, 1).reshape(n, n_runs * width),
            buffers[f"mean{l}"].view(-1), buffers[f"var{l}"].view(-1),
            params[f"gamma{l}"].reshape(-1), params[f"beta{l}"].reshape(-1),
            training=training, momentum=momentum, eps=eps)
        h = torch.relu(h_NC).reshape(n, n_runs, width).transpose(0, 1)
        outputs.append(h)
    return outputs if every_layer else h


def _adam(params, lr: float) -> "torch.optim.Adam":
    """Adam with torch's fused kernel (one pass over each tensor; ~7x faster than the default
    loop on CPU for our stacked weights).  Both training paths use it, so they stay equal."""
    import torch

    return torch.optim.Adam(params, lr=lr, fused=True)


def _stack(dicts: list[dict], device: "torch.device") -> dict:
    import torch

    return {k: torch.stack([d[k] for d in dicts]).to(device) for k in dicts[0]}


def stacked_tables(problems: list, n_pad: int, device) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Observation codes padded to the largest C and m, and the valid-position mask ``valid_SM``."""
    import torch

    n_configs = max(len(p.probs_C) for p in problems)
    code = torch.zeros(len(problems), n_configs, n_pad, dtype=torch.long)
    valid = torch.zeros(len(problems), n_pad)
    for i, p in enumerate(problems):
        c, m = p.obs.code_CM.shape
        code[i, :c, :m] = torch.from_numpy(p.obs.code_CM.astype(np.int64))
        valid[i, :m] = 1.0
    return code.to(device), valid.to(device)


def train_batched(problems: list, datas: list[dict], cfg: Config, device=None,
                  progress: bool = True, threads: int | None = None,
                  n_pad: int | None = None) -> dict:
    """Train every run at once as one stacked model (section 6 / G.1 task); see module docstring.

    Returns ``init`` and ``trained`` (stacked parameters), ``init_buffers``/``buffers`` and
    ``loss_ST`` (each run's masked-token cross-entropy per step).  Adam acts elementwise, so one
    Adam over the stacked tensors is exactly one Adam per run; the loss is the sum of the runs'
    mean losses, so each run's gradient is its own.  ``threads``: torch threads for the loop
    (default :data:`BATCHED_THREADS`); ``n_pad``: the positions every run is padded to (default:
    the largest m of ``problems``; a part of a sweep trained on its own passes the sweep's, so
    each run computes with the same shapes as in the whole).
    """
    import torch
    from ipta.progress import bar

    device, threads = device or torch.device("cpu"), threads or BATCHED_THREADS
    n_pad = n_pad or max(p.setting.n_observed for p in problems)
    code, valid = stacked_tables(problems, n_pad, device)
    init = _stack([init_params(p.setting, cfg, n_pad) for p in problems], device)
    params = {k: v.clone().requires_grad_(True) for k, v in init.items()}
    buffers0 = _stack([init_buffers(cfg) for _ in problems], device)
    buffers = {k: v.clone() for k, v in buffers0.items()}
    config_STB = torch.from_numpy(np.stack([d["train_config_TB"] for d in datas])).to(device)
    masked_STB = torch.from_numpy(np.stack([d["train_masked_TB"] for d in datas])).to(device)
    opt = _adam(params.values(), cfg.lr)
    losses = torch.zeros(len(problems), cfg.steps)
    with torch_threads(threads):
        for t in bar(range(cfg.steps), desc=f"training {len(problems)} runs at once",
                      disable=not progress):
            onehot, target = stacked_inputs(code, valid, config_STB[:, t], masked_STB[:, t])
            feats = stacked_features(params, buffers, onehot, cfg.n_layers, training=True)
            logits_SNM = torch.baddbmm(params["head_b"][:, None, :], feats, params["head_W"])
            logit_SN = torch.gather(logits_SNM, 2, masked_STB[:, t, :, None])[:, :, 0]
            loss_S = torch.nn.functional.binary_cross_entropy_with_logits(
                logit_SN, target, reduction="none").mean(1)
            opt.zero_grad(set_to_none=True)
            loss_S.sum().backward()
            opt.step()
            losses[:, t] = loss_S.detach().cpu()

    def cpu(d: dict) -> dict:
        return {k: v.detach().cpu() for k, v in d.items()}

    return {"init": cpu(init), "trained": cpu(params), "init_buffers": cpu(buffers0),
            "buffers": cpu(buffers), "loss_ST": losses.numpy()}


def _masked_mlp(n_observed: int, cfg: Config) -> "torch.nn.Module":
    """The G.1 network as plain torch modules, for one run (the reference implementation)."""
    import torch
    from torch import nn

    class MaskedMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(3 * n_observed, cfg.embed_dim)
            blocks, width = [], cfg.embed_dim
            for _ in range(cfg.n_layers):
                blocks += [nn.Linear(width, cfg.hidden, bias=False), nn.BatchNorm1d(cfg.hidden),
                           nn.ReLU()]
                width = cfg.hidden
            self.body = nn.Sequential(*blocks)
            self.head = nn.Linear(cfg.hidden, n_observed)

        def features(self, state_NM: torch.Tensor) -> torch.Tensor:
            ids_NM = state_NM + 3 * torch.arange(n_observed, device=state_NM.device)
            return self.body(self.embed(ids_NM).sum(1))

        def forward(self, state_NM: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(state_NM))

    return MaskedMLP()


def _load(model, params: dict, buffers: dict, m: int, n_layers: int) -> None:
    """Copy one run's (unstacked, padded) weights into the reference modules."""
    import torch

    with torch.no_grad():
        model.embed.weight.copy_(params["emb"][:3 * m])
        for l in range(n_layers):
            lin, bn = model.body[3 * l], model.body[3 * l + 1]
            lin.weight.copy_(params[f"W{l}"].T)
            bn.weight.copy_(params[f"gamma{l}"])
            bn.bias.copy_(params[f"beta{l}"])
            bn.running_mean.copy_(buffers[f"mean{l}"])
            bn.running_var.copy_(buffers[f"var{l}"])
        model.head.weight.copy_(params["head_W"][:, :m].T)
        model.head.bias.copy_(params["head_b"][:m])


def _export(model, m: int, n_pad: int, n_layers: int) -> tuple[dict, dict]:
    """The reference modules' weights back in the stacked layout (padded to ``n_pad``)."""
    import torch

    params = {"emb": torch.zeros(3 * n_pad, model.embed.weight.shape[1])}
    params["emb"][:3 * m] = model.embed.weight.detach()
    buffers = {}
    for l in range(n_layers):
        lin, bn = model.body[3 * l], model.body[3 * l + 1]
        params[f"W{l}"] = lin.weight.detach().T.clone()
        params[f"gamma{l}"], params[f"beta{l}"] = bn.weight.detach().clone(), bn.bias.detach().clone()
        buffers[f"mean{l}"], buffers[f"var{l}"] = bn.running_mean.clone(), bn.running_var.clone()
    params["head_W"] = torch.zeros(model.head.weight.shape[1], n_pad)
    params["head_W"][:, :m] = model.head.weight.detach().T
    params["head_b"] = torch.zeros(n_pad)
    params["head_b"][:m] = model.head.bias.detach()
    return params, buffers


def _states(problem, config_N: np.ndarray, masked_N: np.ndarray):
    """``(state_NM, target_N)`` for the reference model: observed bits with the masked one set to 2."""
    import torch

    obs_NM = problem.obs.observe(config_N).astype(np.int64)
    target_N = obs_NM[np.arange(len(config_N)), masked_N].astype(np.float32)
    obs_NM[np.arange(len(config_N)), masked_N] = MASKED
    return torch.from_numpy(obs_NM), torch.from_numpy(target_N)


def train_single(problem, data: dict, cfg: Config, n_pad: int | None = None, device=None,
                 threads: int | None = None) -> dict:
    """Train one run with ordinary torch modules: the reference the batched path must equal.

    Same initial weights, samples, masks and optimiser as :func:`train_batched`; returns the
    same dictionary for this one run (unstacked, padded to ``n_pad``).  ``threads``: torch
    threads for the loop (default :data:`SINGLE_THREADS`).
    """
    import torch

    device, threads = device or torch.device("cpu"), threads or SINGLE_THREADS
    m, n_pad = problem.setting.n_observed, n_pad or problem.setting.n_observed
    init, buffers0 = init_params(problem.setting, cfg, n_pad), init_buffers(cfg)
    model = _masked_mlp(m, cfg)
    _load(model, init, buffers0, m, cfg.n_layers)
    model.to(device).train()
    opt = _adam(model.parameters(), cfg.lr)
    losses = np.zeros(cfg.steps)
    with torch_threads(threads):
        for t in range(cfg.steps):
            state, target = _states(problem, data["train_config_TB"][t], data["train_masked_TB"][t])
            logits_NM = model(state.to(device))
            idx = torch.from_numpy(data["train_masked_TB"][t]).to(device)
            logit_N = logits_NM.gather(1, idx[:, None])[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit_N, target.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses[t] = loss.item()
    trained, buffers = _export(model.cpu(), m, n_pad, cfg.n_layers)
    return {"init": init, "trained": trained, "init_buffers": buffers0, "buffers": buffers,
            "loss_T": losses}

"""The sweep of the simulations (Figure 2): train every run's masked next-token MLP, probe its
features for each latent, and gather the exact invertibility measures of each run.

The network and its two training paths live in :mod:`ipta.simulations.masked_mlp`; the problems
in :mod:`ipta.simulations.problems`. ``cfg`` is the chapter's
:class:`~ipta.simulations.config.Config`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ipta.parallel import parallel_map
from ipta.simulations.config import Config
from ipta.simulations.problems import (Problem, Setting, make_problem, sweep_settings,
                                       training_data)


def probe_accuracy(fit_NF: np.ndarray, fit_NK: np.ndarray, score_NF: np.ndarray,
                   score_NK: np.ndarray, c: float) -> np.ndarray:
    """``acc_K``: logistic regression per latent (scikit-learn's ``LogisticRegression(C=c)``,
    :func:`ipta.probes.logistic_regression`), fitted on one sample, scored on another.

    Features are standardised with the fit sample's statistics first, so lbfgs converges in a
    few dozen iterations; ``max_iter`` is only a safety cap.  The probe stays linear in the
    features.
    """
    from sklearn.preprocessing import StandardScaler

    from ipta.parallel import one_blas_thread
    from ipta.probes import logistic_regression

    scaler = StandardScaler().fit(fit_NF)
    fit_NF, score_NF = scaler.transform(fit_NF), scaler.transform(score_NF)
    acc_K = np.zeros(fit_NK.shape[1])
    with one_blas_thread():  # each fit is a few hundred by a few hundred numbers
        for k in range(fit_NK.shape[1]):
            probe = logistic_regression(fit_NF, fit_NK[:, k], c, max_iter=1000)
            acc_K[k] = np.mean((probe.logits(score_NF) > 0) == (score_NK[:, k] == 1))
    return acc_K


def unseen_split(config_N: np.ndarray, configs_CK: np.ndarray, share: float,
                 rng: np.random.Generator) -> np.ndarray:
    """A mask of the samples whose latent configuration is held out: ``share`` of the
    configurations (at least one), drawn at random among those that keep both values of every
    latent on each side, so a probe must generalise to combinations it never saw."""
    n_configs = len(configs_CK)
    n_held = max(1, round(share * n_configs))
    for _ in range(200):
        held_C = np.zeros(n_configs, bool)
        held_C[rng.choice(n_configs, n_held, replace=False)] = True
        if all(len(np.unique(configs_CK[side, k])) == 2 for side in (held_C, ~held_C)
               for k in range(configs_CK.shape[1])):
            break
    return held_C[config_N]


def unseen_accuracy(f_NF: np.ndarray, latents_NK: np.ndarray, held_N: np.ndarray,
                    c: float) -> np.ndarray:
    """``acc_K`` of probes fitted on the samples of seen configurations and scored on those of
    held-out ones (NaN for a latent constant on either side). A representation that only
    separates the finite set of configurations it was fitted on fails here; one that encodes
    each latent linearly does not."""
    acc_K = np.full(latents_NK.shape[1], np.nan)
    both_K = np.array([len(np.unique(latents_NK[~held_N, k])) == 2
                       for k in range(latents_NK.shape[1])], bool) & held_N.any()
    if both_K.any():  # one standardisation for every latent: the fit samples are the same
        acc_K[both_K] = probe_accuracy(f_NF[~held_N], latents_NK[~held_N][:, both_K],
                                       f_NF[held_N], latents_NK[held_N][:, both_K], c)
    return acc_K


def probed_positions(n_observed: int, n_probed: int) -> np.ndarray:
    """The masked positions probed one by one: ``n_probed`` evenly spaced (all if m is fewer)."""
    return np.unique(np.linspace(0, n_observed - 1, min(n_probed, n_observed)).round()).astype(int)


def _all_features(trained: dict, onehot, n_layers: int) -> dict[str, list[np.ndarray]]:
    """Every block's output ``feats_SNH`` (a list over layers), trained and untrained."""
    from ipta.simulations.masked_mlp import stacked_features

    return {name: [h.numpy() for h in stacked_features(trained[params], trained[buffers], onehot,
                                                       n_layers, training=False,
                                                       every_layer=True)]
            for name, params, buffers in (("trained", "trained", "buffers"),
                                          ("untrained", "init", "init_buffers"))}


def evaluate_runs(problems: list[Problem], datas: list[dict], trained: dict, cfg: Config,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """Probe accuracies of every run's latents (NaN beyond a run's K or probed positions).

    Pooled over random masked positions, as in appendix G.1: ``acc_{trained,untrained}_SK`` on
    the MLP output and ``acc_raw_SK`` on the observed bits (all m, nothing masked); per layer:
    ``acc_layer_{trained,untrained}_SLK`` on every block's output, pooled; per masked position:
    ``acc_pos_{trained,untrained}_SPK`` on the MLP output with position
    ``positions_SP`` masked in every sample (fitted and scored on the same samples as pooled).
    Every ``acc_*`` has an ``unseen_*`` twin: probes fitted on samples of some latent
    configurations and scored on samples of configurations held out of fitting
    (:func:`unseen_accuracy`), a readout that can fail.
    """
    import torch
    from ipta.progress import bar

    from ipta.simulations.masked_mlp import stacked_inputs, stacked_tables

    n_runs, k_max, n_layers = len(problems), max(p.setting.n_latents for p in problems), cfg.n_layers
    positions = [probed_positions(p.setting.n_observed, cfg.positions_probed) for p in problems]
    n_pos = max(len(p) for p in positions)
    positions_SP = np.stack([np.pad(p, (0, n_pos - len(p)), mode="edge") for p in positions])
    out = {"positions_SP": np.where(np.arange(n_pos) < np.array([len(p) for p in positions])[:, None],
                                    positions_SP, -1)}
    for tag in ("trained", "untrained"):
        out[f"acc_{tag}_SK"] = np.full((n_runs, k_max), np.nan)
        out[f"acc_layer_{tag}_SLK"] = np.full((n_runs, n_layers, k_max), np.nan)
        out[f"acc_pos_{tag}_SPK"] = np.full((n_runs, n_pos, k_max), np.nan)
        out[f"unseen_{tag}_SK"] = np.full((n_runs, k_max), np.nan)
        out[f"unseen_layer_{tag}_SLK"] = np.full((n_runs, n_layers, k_max), np.nan)
        out[f"unseen_pos_{tag}_SPK"] = np.full((n_runs, n_pos, k_max), np.nan)
    out["acc_raw_SK"] = np.full((n_runs, k_max), np.nan)
    out["unseen_raw_SK"] = np.full((n_runs, k_max), np.nan)
    n_pad = trained["init"]["emb"].shape[1] // 3
    code, valid = stacked_tables(problems, n_pad, torch.device("cpu"))
    config = torch.from_numpy(np.stack([d["eval_config_N"] for d in datas]))
    masked = torch.from_numpy(np.stack([d["eval_masked_N"] for d in datas]))
    with torch.no_grad():
        pooled = _all_features(trained, stacked_inputs(code, valid, config, masked)[0], n_layers)
        by_position = [_all_features(trained, stacked_inputs(
            code, valid, config, torch.from_numpy(positions_SP[:, [j]]).expand_as(masked))[0],
            n_layers) for j in range(n_pos)]
    tasks = []
    for i, p in enumerate(problems):
        config_N = datas[i]["eval_config_N"]
        tasks.append(_RunProbes(
            latents_NK=p.configs_CK[config_N],
            held_N=unseen_split(config_N, p.configs_CK, cfg.unseen_share,
                                np.random.default_rng(p.setting.stream(3))),
            raw_NF=p.obs.observe(config_N).astype(np.float64),
            layers={tag: [pooled[tag][l][i] for l in range(n_layers)]
                    for tag in ("trained", "untrained")},
            positions={tag: [by_position[j][tag][-1][i] for j in range(len(positions[i]))]
                       for tag in ("trained", "untrained")},
            n_fit=cfg.n_fit, n_score=cfg.n_score, c=cfg.probe_c))
    results = parallel_map(_probe_run, tasks)
    for i, got in enumerate(bar(results, total=n_runs, desc="probing", disable=not progress)):
        k = problems[i].setting.n_latents
        for name, acc in got.items():
            if name.endswith("_SLK") or name.endswith("_SPK"):
                out[name][i, :len(acc), :k] = acc
            else:
                out[name][i, :k] = acc
    return out


@dataclasses.dataclass
class _RunProbes:
    """One run's probing inputs: its latents and held-out configurations, the observed bits,
    every block's pooled output and the final output per probed position (trained, untrained)."""

    latents_NK: np.ndarray
    held_N: np.ndarray
    raw_NF: np.ndarray
    layers: dict[str, list[np.ndarray]]
    positions: dict[str, list[np.ndarray]]
    n_fit: int
    n_score: int
    c: float


def _probe_run(t: _RunProbes) -> dict[str, np.ndarray]:
    """Every probe of one run (:func:`evaluate_runs`'s arrays for row ``i``, without padding)."""
    fit, score = slice(0, t.n_fit), slice(t.n_fit, t.n_fit + t.n_score)

    def both(f_NF: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Accuracy on the samples of every configuration, and on held-out configurations."""
        return (probe_accuracy(f_NF[fit], t.latents_NK[fit], f_NF[score], t.latents_NK[score],
                               t.c),
                unseen_accuracy(f_NF, t.latents_NK, t.held_N, t.c))

    out = dict(zip(("acc_raw_SK", "unseen_raw_SK"), both(t.raw_NF)))
    for tag in ("trained", "untrained"):
        layer = [both(f) for f in t.layers[tag]]
        out[f"acc_layer_{tag}_SLK"] = np.stack([a for a, _ in layer])
        out[f"unseen_layer_{tag}_SLK"] = np.stack([u for _, u in layer])
        out[f"acc_{tag}_SK"], out[f"unseen_{tag}_SK"] = layer[-1]
        position = [both(f) for f in t.positions[tag]]
        out[f"acc_pos_{tag}_SPK"] = np.stack([a for a, _ in position])
        out[f"unseen_pos_{tag}_SPK"] = np.stack([u for _, u in position])
    return out


def stack_runs(runs: list[dict]) -> dict:
    """Stack :func:`ipta.simulations.masked_mlp.train_single` outputs into :func:`train_batched`'s layout."""
    import torch

    out = {key: {k: torch.stack([r[key][k] for r in runs]) for k in runs[0][key]}
           for key in ("init", "trained", "init_buffers", "buffers")}
    out["loss_ST"] = np.stack([r["loss_T"] for r in runs])
    return out


def train_over_cores(problems: list[Problem], datas: list[dict], cfg: Config, device,
                     progress: bool = True) -> dict:
    """:func:`~ipta.simulations.masked_mlp.train_batched` of every run, the runs shared out
    over the machine's cores in contiguous parts, each part one stacked model on one thread.

    Each run's arithmetic is its own (its gradient, BatchNorm over its own batch, Adam
    elementwise) and every part is padded to the sweep's largest m, so the result is the one
    stacked model of all runs, joined in run order (tested bit for bit). On one thread the
    stacked loop left the second core idle for the whole training (about 110 s of a cold
    simulations chapter). On a GPU, or with one core, it is the one stacked model."""
    import torch

    from ipta.simulations.masked_mlp import train_batched

    n_pad = max(p.setting.n_observed for p in problems)
    parts = core_parts(len(problems)) if device.type == "cpu" else []
    if len(parts) <= 1:
        return train_batched(problems, datas, cfg, device, progress, n_pad=n_pad)
    tasks = [(problems[part], datas[part], cfg, n_pad) for part in parts]
    done = list(parallel_map(_train_part, tasks, jobs=len(tasks)))
    out = {key: {k: torch.cat([d[key][k] for d in done]) for k in done[0][key]}
           for key in ("init", "trained", "init_buffers", "buffers")}
    out["loss_ST"] = np.concatenate([d["loss_ST"] for d in done])
    return out


def core_parts(n: int) -> list[slice]:
    """``n`` runs shared out over the machine's cores: one contiguous slice per core."""
    from ipta.parallel import cores

    bounds = np.linspace(0, n, min(cores(), n) + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _train_part(task: tuple) -> dict:
    """One part of :func:`train_over_cores`, in a worker process."""
    from ipta.simulations.masked_mlp import train_batched

    problems, datas, cfg, n_pad = task
    return train_batched(problems, datas, cfg, progress=False, n_pad=n_pad)


def run_sweep(cfg: Config, batched: bool = True, progress: bool = True,
              settings: list[Setting] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Build, train (all at once, or one at a time if ``batched`` is False) and probe every run.

    Returns arrays (per run ``S``: accuracies ``acc_*_SK``, losses ``loss_ST``, exact
    invertibility measures) and meta (the settings, in order, and the training wall time).
    """
    import time

    from ipta.progress import bar

    from ipta.devices import pick_device
    from ipta.simulations.masked_mlp import train_single

    settings = settings or sweep_settings(cfg)
    problems = [make_problem(s, cfg) for s in settings]
    datas = [training_data(p, cfg) for p in problems]
    device = pick_device(cfg.device)
    start = time.perf_counter()
    if batched:
        trained = train_over_cores(problems, datas, cfg, device, progress)
    else:
        n_pad = max(s.n_observed for s in settings)
        trained = stack_runs([train_single(p, d, cfg, n_pad, device)
                              for p, d in bar(list(zip(problems, datas)), desc="training one by one",
                                               disable=not progress)])
    train_seconds = time.perf_counter() - start
    arrays = evaluate_runs(problems, datas, trained, cfg, progress)
    arrays["loss_ST"] = trained["loss_ST"]
    measures = [p.invertibility() for p in problems]
    for name in measures[0]:
        arrays[name + "_S"] = np.array([m[name] for m in measures])
    meta = {"settings": [dataclasses.asdict(s) for s in settings], "train_seconds": train_seconds,
            "batched": batched, "device": str(device)}
    return arrays, meta


def results_frame(arrays: dict[str, np.ndarray], meta: dict) -> "pandas.DataFrame":
    """One row per run: its setting, mean probe accuracies, final loss and exact measures."""
    import pandas as pd

    df = pd.DataFrame(meta["settings"])
    for name in ("trained", "untrained", "raw"):
        df[name] = np.nanmean(arrays[f"acc_{name}_SK"], axis=1)
        df[f"{name}_unseen"] = np.nanmean(arrays[f"unseen_{name}_SK"], axis=1)
    for name in ("trained", "untrained"):
        df[f"{name}_per_position"] = np.nanmean(arrays[f"acc_pos_{name}_SPK"], axis=(1, 2))
        df[f"{name}_per_position_unseen"] = np.nanmean(arrays[f"unseen_pos_{name}_SPK"],
                                                       axis=(1, 2))
        for l in range(arrays[f"acc_layer_{name}_SLK"].shape[1]):
            df[f"{name}_layer{l + 1}"] = np.nanmean(arrays[f"acc_layer_{name}_SLK"][:, l], axis=1)
            df[f"{name}_layer{l + 1}_unseen"] = np.nanmean(
                arrays[f"unseen_layer_{name}_SLK"][:, l], axis=1)
    tail = max(1, arrays["loss_ST"].shape[1] // 10)
    df["final_loss"] = arrays["loss_ST"][:, -tail:].mean(axis=1)
    for name in ("identified_share", "posterior_concentration", "bayes_full", "bayes_masked",
                 "loss_floor", "diversity_rank"):
        df[name] = arrays[name + "_S"]
    return df


SERIES = {"trained": "next-token MLP (trained)", "untrained": "same MLP, untrained",
          "raw": "raw observed bits", "bayes_masked": "best possible (masked input, exact)"}

READINGS = {"pooled": ("trained", "untrained"),
            "per position": ("trained_per_position", "untrained_per_position")}
"""The two probe readings of the MLP output: (trained column, untrained column) of ``runs``."""
UNSEEN = {"pooled, unseen": ("trained_unseen", "untrained_unseen"),
          "per position, unseen": ("trained_per_position_unseen",
                                   "untrained_per_position_unseen")}
"""The same readings scored on latent configurations held out of every probe's fit: a
readout that can fail (a representation that only separates the configurations it was fitted
on reads at chance there)."""


def n_layers(runs: "pandas.DataFrame") -> int:
    """How many blocks the runs' frame reads (columns ``trained_layer<l>``)."""
    return sum(c.startswith("trained_layer") and not c.endswith("_unseen") for c in runs.columns)

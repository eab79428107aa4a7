"""The sweep of the simulations (Figure 2): train every run's masked next-token MLP, probe its
features for each latent, and gather the exact invertibility measures of each run.

The network and its two training paths live in :mod:`ipta.simulations.masked_mlp`; the problems
in :mod:`ipta.simulations.problems`. ``cfg`` below is the simulations chapter's Config.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ipta.simulations.problems import (Problem, Setting, make_problem, sweep_settings,
                                       training_data)


def probe_accuracy(fit_NF: np.ndarray, fit_NK: np.ndarray, score_NF: np.ndarray,
                   score_NK: np.ndarray, c: float) -> np.ndarray:
    """``acc_K``: scikit-learn logistic regression per latent, fitted on one sample, scored on another.

    Features are standardised with the fit sample's statistics first, so lbfgs (scikit-learn's
    default solver) converges in a few dozen iterations; ``max_iter`` is only a safety cap.  The
    probe stays linear in the features.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    scaler = StandardScaler().fit(fit_NF)
    fit_NF, score_NF = scaler.transform(fit_NF), scaler.transform(score_NF)
    acc_K = np.zeros(fit_NK.shape[1])
    # One BLAS thread: each fit is a few hundred by a few hundred numbers, and on a busy 2-core
    # machine the threads' synchronisation made a fit ~14x slower (0.14 s against 0.01 s).
    with threadpool_limits(1):
        for k in range(fit_NK.shape[1]):
            probe = LogisticRegression(C=c, max_iter=1000).fit(fit_NF, fit_NK[:, k])
            acc_K[k] = probe.score(score_NF, score_NK[:, k])
    return acc_K


def evaluate_runs(problems: list[Problem], datas: list[dict], trained: dict, cfg,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """Probe accuracies ``acc_*_SK`` (NaN beyond a run's K) of the trained MLP's features, of the
    same MLP untrained, and of the raw observed variables (all m, nothing masked)."""
    import torch
    from tqdm.auto import tqdm

    from ipta.simulations.masked_mlp import stacked_tables, stacked_features, stacked_inputs

    n_runs, k_max = len(problems), max(p.setting.n_latents for p in problems)
    out = {name: np.full((n_runs, k_max), np.nan) for name in ("acc_trained_SK", "acc_untrained_SK",
                                                                 "acc_raw_SK")}
    n_pad = trained["init"]["emb"].shape[1] // 3
    code, valid = stacked_tables(problems, n_pad, torch.device("cpu"))
    config = torch.from_numpy(np.stack([d["eval_config_N"] for d in datas]))
    masked = torch.from_numpy(np.stack([d["eval_masked_N"] for d in datas]))
    with torch.no_grad():
        onehot, _ = stacked_inputs(code, valid, config, masked)
        feats = {"acc_trained_SK": stacked_features(trained["trained"], trained["buffers"], onehot,
                                                    cfg.n_layers, training=False).numpy(),
                 "acc_untrained_SK": stacked_features(trained["init"], trained["init_buffers"],
                                                      onehot, cfg.n_layers, training=False).numpy()}
    fit = slice(0, cfg.n_fit)
    score = slice(cfg.n_fit, cfg.n_fit + cfg.n_score)
    for i in tqdm(range(n_runs), desc="probing", disable=not progress):
        p, config_N = problems[i], datas[i]["eval_config_N"]
        latents_NK, k = p.configs_CK[config_N], p.setting.n_latents
        run_feats = {name: f[i] for name, f in feats.items()}
        run_feats["acc_raw_SK"] = p.obs.observe(config_N).astype(np.float64)
        for name, f_NF in run_feats.items():
            out[name][i, :k] = probe_accuracy(f_NF[fit], latents_NK[fit], f_NF[score],
                                              latents_NK[score], cfg.probe_c)
    return out


def stack_runs(runs: list[dict]) -> dict:
    """Stack :func:`ipta.simulations.masked_mlp.train_single` outputs into :func:`train_batched`'s layout."""
    import torch

    out = {key: {k: torch.stack([r[key][k] for r in runs]) for k in runs[0][key]}
           for key in ("init", "trained", "init_buffers", "buffers")}
    out["loss_ST"] = np.stack([r["loss_T"] for r in runs])
    return out


def run_sweep(cfg, batched: bool = True, progress: bool = True,
              settings: list[Setting] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Build, train (all at once, or one at a time if ``batched`` is False) and probe every run.

    Returns arrays (per run ``S``: accuracies ``acc_*_SK``, losses ``loss_ST``, exact
    invertibility measures) and meta (the settings, in order, and the training wall time).
    """
    import time

    from tqdm.auto import tqdm

    from ipta.devices import pick_device
    from ipta.simulations.masked_mlp import train_batched, train_single

    settings = settings or sweep_settings(cfg)
    problems = [make_problem(s, cfg) for s in settings]
    datas = [training_data(p, cfg) for p in problems]
    device = pick_device(cfg.device)
    start = time.perf_counter()
    if batched:
        trained = train_batched(problems, datas, cfg, device, progress)
    else:
        n_pad = max(s.n_observed for s in settings)
        trained = stack_runs([train_single(p, d, cfg, n_pad, device)
                              for p, d in tqdm(list(zip(problems, datas)), desc="training one by one",
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
    tail = max(1, arrays["loss_ST"].shape[1] // 10)
    df["final_loss"] = arrays["loss_ST"][:, -tail:].mean(axis=1)
    for name in ("identified_share", "posterior_concentration", "bayes_full", "bayes_masked",
                 "loss_floor"):
        df[name] = arrays[name + "_S"]
    return df

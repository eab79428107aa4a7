"""The simulation of paper section 6 / appendix G.1 (Figure 2): masked next-token MLPs on DAG data.

Each *run* is one setting (graph kind, K latents, m observed variables) and one seed.  The seed
fixes the DAG and its tables, the observation map, the network's initial weights and the data,
so the spread over seeds is over random problems as well as random initialisations.

The network, its two training paths (all runs at once, or one at a time) and the masking
protocol live in :mod:`ipta.masked_mlp`; this module holds the parameters, the data of each run,
the probes and the sweep.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from ipta.config import Config, ConfigError, param
from ipta.dags import BernoulliDAG, all_configs, config_index, make_dag, joint_probs, sample_latents
from ipta.observations import (ObservationMap, identified_share, latent_bayes_accuracy,
                               masked_latent_bayes_accuracy, masked_token_entropy,
                               posterior_concentration, random_observation_map)


@dataclasses.dataclass(frozen=True)
class SimulationConfig(Config):
    """Parameters of the simulations chapter (Figure 2 left and right)."""

    chain_latents: int = param(3, "latents in the chain of Figure 2 (left)", low=2, high=8)
    chain_observed: tuple[int, ...] = param(
        (2, 3, 4, 6, 9, 12), "observed-variable counts m of Figure 2 (left)", low=2, high=64)
    er_graphs: tuple[str, ...] = param(("ER1", "ER2", "ER3"), "Erdos-Renyi kinds of Figure 2 (right)",
                                       choices=("ER1", "ER2", "ER3", "ER4"))
    er_latents: tuple[int, ...] = param((4, 5, 6, 7, 8), "latent sizes K of Figure 2 (right)",
                                        low=2, high=8)
    er_observed_per_latent: int = param(3, "Figure 2 (right) observes m = this times K variables",
                                        low=1, high=8)
    seeds: tuple[int, ...] = param((0, 1, 2, 3, 4), "seeds: problem, init and data of each run", low=0)
    steps: int = param(2000, "Adam steps per run (default: where the loss has flattened for "
                       "K <= 7 and falls slowly for K = 8)", low=1)
    batch_size: int = param(64, "samples per step (fresh from the DAG each step)", low=2)
    lr: float = param(1e-3, "Adam learning rate (illegible in the paper; our choice)", low=1e-6, high=1.0)
    hidden: int = param(128, "width of each MLP layer (paper: 256; on 2 CPU cores 128 reaches a "
                        "lower loss in the same time)", low=2)
    n_layers: int = param(3, "Linear-BatchNorm-ReLU blocks (paper: 3)", low=1, high=8)
    embed_dim: int = param(64, "width of the position-and-state token embedding", low=1)
    n_fit: int = param(500, "samples to fit each logistic-regression probe", low=20)
    n_score: int = param(500, "separate samples to score each probe", low=20)
    probe_c: float = param(1.0, "inverse L2 strength C of the probes (scikit-learn default)", low=1e-6)
    table_low: float = param(0.2, "lower end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    table_high: float = param(0.8, "upper end of the Bernoulli parameters' uniform law", low=0.0, high=1.0)
    device: Literal["auto", "cpu", "cuda", "mps"] = param("auto", "where to train")

    PROFILES = {
        "smoke": {"chain_observed": (2, 6), "er_graphs": ("ER1", "ER3"), "er_latents": (4, 5),
                  "seeds": (0, 1), "steps": 40, "hidden": 64, "n_fit": 200, "n_score": 200},
        "paper": {"chain_observed": (2, 3, 4, 5, 6, 8, 10, 12, 16), "steps": 3000,
                  "batch_size": 256, "hidden": 256, "n_fit": 4000, "n_score": 4000},
    }

    def validate(self) -> None:
        if self.table_low > self.table_high:
            raise ConfigError(f"parameter 'table_low': {self.table_low} exceeds table_high "
                              f"{self.table_high}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"parameter 'seeds': {self.seeds} repeats a seed")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One run: the graph, its size, the number of observed variables and the seed."""

    panel: str  # "left" (chain, m varies) or "right" (ER graphs, K varies)
    graph: str
    n_latents: int
    n_observed: int
    seed: int

    def stream(self, purpose: int, with_m: bool = True) -> list[int]:
        """Seed words of an independent random stream of this run (numpy SeedSequence entropy).

        The DAG and observation streams leave m out, so one seed's runs with different m share
        the same DAG and nested observation maps (m' > m extends the m variables).
        """
        graph_id = 0 if self.graph == "chain" else int(self.graph[2:])
        words = [self.seed, graph_id, self.n_latents, purpose]
        return words + [self.n_observed] if with_m else words


def sweep_settings(cfg: SimulationConfig) -> list[Setting]:
    """Every run of both panels of Figure 2, in a fixed order."""
    left = [Setting("left", "chain", cfg.chain_latents, m, s)
            for m in cfg.chain_observed for s in cfg.seeds]
    right = [Setting("right", g, k, cfg.er_observed_per_latent * k, s)
             for g in cfg.er_graphs for k in cfg.er_latents for s in cfg.seeds]
    return left + right


@dataclasses.dataclass(frozen=True)
class Problem:
    """A run's data-generating process and the exact invertibility of its observation map."""

    setting: Setting
    dag: BernoulliDAG
    obs: ObservationMap
    probs_C: np.ndarray
    configs_CK: np.ndarray

    def invertibility(self) -> dict[str, float]:
        """Exact measures (appendix G.1's 'degree of invertibility', made computable), and the
        exact floor of the masked-token loss that training approaches."""
        code_CM = self.obs.code_CM
        return {"identified_share": identified_share(self.probs_C, code_CM),
                "posterior_concentration": posterior_concentration(self.probs_C, code_CM),
                "bayes_full": float(latent_bayes_accuracy(self.probs_C, self.configs_CK,
                                                          code_CM).mean()),
                "bayes_masked": float(masked_latent_bayes_accuracy(self.probs_C, self.configs_CK,
                                                                   code_CM).mean()),
                "loss_floor": masked_token_entropy(self.probs_C, code_CM)}


def make_problem(setting: Setting, cfg: SimulationConfig) -> Problem:
    """Build the DAG, its tables and the observation map of one run (appendix G.1)."""
    rng_dag = np.random.default_rng(setting.stream(0, with_m=False))
    dag = make_dag(setting.graph, setting.n_latents, rng_dag, cfg.table_low, cfg.table_high)
    rng_obs = np.random.default_rng(setting.stream(1, with_m=False))
    obs = random_observation_map(setting.n_latents, setting.n_observed, rng_obs)
    return Problem(setting, dag, obs, joint_probs(dag), all_configs(setting.n_latents))


def draw_samples(problem: Problem, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(config_N, masked_N)``: ancestral samples' configurations and a uniform masked position."""
    config_N = config_index(sample_latents(problem.dag, n, rng))
    masked_N = rng.integers(problem.setting.n_observed, size=n)
    return config_N, masked_N


def training_data(problem: Problem, cfg: SimulationConfig) -> dict[str, np.ndarray]:
    """All samples of one run, drawn from the run's own data stream: training, probe fit, probe score."""
    rng = np.random.default_rng(problem.setting.stream(2))
    config, masked = draw_samples(problem, cfg.steps * cfg.batch_size, rng)
    out = {"train_config_TB": config.reshape(cfg.steps, cfg.batch_size),
           "train_masked_TB": masked.reshape(cfg.steps, cfg.batch_size)}
    out["eval_config_N"], out["eval_masked_N"] = draw_samples(problem, cfg.n_fit + cfg.n_score, rng)
    return out



# ----------------------------------------------------------------------------- probes and sweep

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


def evaluate_runs(problems: list[Problem], datas: list[dict], trained: dict, cfg: SimulationConfig,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """Probe accuracies ``acc_*_SK`` (NaN beyond a run's K) of the trained MLP's features, of the
    same MLP untrained, and of the raw observed variables (all m, nothing masked)."""
    import torch
    from tqdm.auto import tqdm

    from ipta.masked_mlp import stacked_tables, stacked_features, stacked_inputs

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
    """Stack :func:`ipta.masked_mlp.train_single` outputs into :func:`train_batched`'s layout."""
    import torch

    out = {key: {k: torch.stack([r[key][k] for r in runs]) for k in runs[0][key]}
           for key in ("init", "trained", "init_buffers", "buffers")}
    out["loss_ST"] = np.stack([r["loss_T"] for r in runs])
    return out


def run_sweep(cfg: SimulationConfig, batched: bool = True, progress: bool = True,
              settings: list[Setting] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Build, train (all at once, or one at a time if ``batched`` is False) and probe every run.

    Returns arrays (per run ``S``: accuracies ``acc_*_SK``, losses ``loss_ST``, exact
    invertibility measures) and meta (the settings, in order, and the training wall time).
    """
    import time

    from tqdm.auto import tqdm

    from ipta.devices import pick_device
    from ipta.masked_mlp import train_batched, train_single

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


def simulate(cfg: SimulationConfig, progress: bool = True) -> tuple["pandas.DataFrame", np.ndarray]:
    """The whole sweep of Figure 2, cached on its parameters: one table row per run, and every
    run's training loss per step ``loss_ST`` (rows in the table's order)."""
    from ipta.cache import get_or_compute

    spec = {k: v for k, v in cfg.to_dict().items() if k != "device"}
    arrays, meta = get_or_compute("simulations", spec, lambda: run_sweep(cfg, progress=progress))
    return results_frame(arrays, meta), arrays["loss_ST"]


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


# ----------------------------------------------------------------------------- tables and figures

SERIES = {"trained": "next-token MLP (trained)", "untrained": "same MLP, untrained",
          "raw": "raw observed bits", "bayes_masked": "best possible (masked input, exact)"}


def summary_table(df: "pandas.DataFrame") -> "pandas.DataFrame":
    """Mean and standard deviation over seeds of each setting's accuracies, with exact measures."""
    keys = ["panel", "graph", "n_latents", "n_observed"]
    cols = ["trained", "untrained", "raw"]
    stats = df.groupby(keys)[cols].agg(["mean", "std"])
    stats.columns = [f"{c}_{s}" for c, s in stats.columns]
    exact = df.groupby(keys)[["posterior_concentration", "identified_share", "bayes_masked"]].mean()
    return stats.join(exact).reset_index()


def _panel(ax, df: "pandas.DataFrame", x: str, title: str) -> None:
    """Accuracy against ``x`` (mean and one standard deviation over seeds) for every series."""
    grouped = df.groupby(x)
    xs = np.array(sorted(df[x].unique()))
    for name, label in SERIES.items():
        mean, std = grouped[name].mean().loc[xs], grouped[name].std().fillna(0).loc[xs]
        style = "--" if name == "bayes_masked" else "-o"
        ax.plot(xs, mean, style, label=label, color="k" if name == "bayes_masked" else None)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    conc = grouped["posterior_concentration"].mean().loc[xs]
    ax.set_xticks(xs, [f"{v}\n{c:.2f}" for v, c in zip(xs, conc)])
    ax.set_title(title)
    ax.grid(alpha=0.3)


def plot_training_loss(df: "pandas.DataFrame", loss_ST: np.ndarray, window: int = 50):
    """Excess training loss (loss minus its exact floor), mean over seeds, per setting, log scale.

    A moving average over ``window`` steps smooths the noise of 64-sample batches; a curve that
    has flattened says more steps would change little.
    """
    import matplotlib.pyplot as plt

    window = max(1, min(window, loss_ST.shape[1] // 5))  # short (smoke) runs: a shorter window
    kernel = np.ones(window) / window
    smooth_ST = np.stack([np.convolve(l_T, kernel, mode="valid") for l_T in loss_ST])
    excess_ST = np.maximum(smooth_ST - df.loss_floor.to_numpy()[:, None], 1e-4)
    steps = np.arange(window, loss_ST.shape[1] + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, (panel, x) in zip(axes, (("left", "n_observed"), ("right", "n_latents"))):
        sub = df[df.panel == panel]
        symbol = "m" if x == "n_observed" else "K"
        for value, rows in sub.groupby(x).groups.items():
            ax.plot(steps, excess_ST[rows].mean(0), label=f"{symbol} = {value}")
        ax.set_yscale("log")
        ax.set_xlabel("Adam step")
        ax.set_title("chain (left panel)" if panel == "left" else "ER graphs (right panel)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss minus exact floor (nats)")
    fig.tight_layout()
    return fig


def plot_figure2(df: "pandas.DataFrame"):
    """Figure 2, left (chain, accuracy vs m) and right (one axes per ERk, accuracy vs K).

    Under each x tick: the exact posterior concentration E_x[max_c P(c|x)] of that setting.
    """
    import matplotlib.pyplot as plt

    graphs = sorted(df[df.panel == "right"].graph.unique())
    fig, axes = plt.subplots(1, 1 + len(graphs), figsize=(4.2 * (1 + len(graphs)), 3.8),
                             sharey=True, squeeze=False)
    left = df[df.panel == "left"]
    _panel(axes[0, 0], left, "n_observed", f"chain of {left.n_latents.iloc[0]} latents")
    axes[0, 0].set_xlabel("observed variables m\n(posterior concentration)")
    axes[0, 0].set_ylabel("probe accuracy (mean over latents)")
    for ax, g in zip(axes[0, 1:], graphs):
        sub = df[df.graph == g]
        _panel(ax, sub, "n_latents", f"{g}, m = {sub.n_observed.iloc[0] // sub.n_latents.iloc[0]}K")
        ax.set_xlabel("latent variables K\n(posterior concentration)")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig

"""Train the same simulation sweeps all runs at once and one run at a time; print the speed ratio.

Usage: .venv/bin/python benchmarks/bench_simulations.py [--default-steps 20] [--threads 1 2]

Two sweeps: the smoke profile's (at its own steps) and the default profile's shapes (105 runs
at the default width, fewer steps: the time per step does not depend on the step count).  Each
path is timed with every thread count given and the ratio compares each path at ITS best, so
neither is handicapped by a thread setting that suits the other.  Both paths see identical
weights, samples and masks; the script prints the largest difference in any probe accuracy and
any training loss between them (at their best settings), and the achieved model FLOP/s of each
path, which shows when a path is bound by arithmetic rather than by per-operation overhead.
"""

import argparse
import time

import numpy as np

from ipta.simulations.chapter import Config as SimulationConfig
from ipta.simulations.masked_mlp import train_batched, train_single
from ipta.simulations.problems import make_problem, sweep_settings, training_data
from ipta.simulations.sweep import evaluate_runs, stack_runs


def model_flops(settings, cfg) -> float:
    """Floating-point operations of training every run: 3 x the forward matrix products
    (forward, and the two backward products), embedding lookups and elementwise work left out."""
    total = 0.0
    for s in settings:
        macs = (cfg.embed_dim * cfg.hidden + (cfg.n_layers - 1) * cfg.hidden ** 2
                + cfg.hidden * s.n_observed)
        total += 3 * 2 * macs * cfg.batch_size * cfg.steps
    return total


def time_path(batched: bool, threads: int, problems, datas, cfg) -> tuple[float, dict]:
    """Training wall time (seconds) and result of one path with ``threads`` torch threads."""
    start = time.perf_counter()
    if batched:
        out = train_batched(problems, datas, cfg, progress=False, threads=threads)
    else:
        n_pad = max(p.setting.n_observed for p in problems)
        out = stack_runs([train_single(p, d, cfg, n_pad, threads=threads)
                          for p, d in zip(problems, datas)])
    return time.perf_counter() - start, out


def bench(name: str, cfg: SimulationConfig, thread_counts: list[int]) -> None:
    settings = sweep_settings(cfg)
    problems = [make_problem(s, cfg) for s in settings]
    datas = [training_data(p, cfg) for p in problems]
    flops = model_flops(settings, cfg)
    print(f"\n{name}: {len(settings)} runs x {cfg.steps} steps, batch {cfg.batch_size}, "
          f"hidden {cfg.hidden}, {flops / 1e9:.1f} GFLOP of model arithmetic")
    best = {}
    for batched in (False, True):
        label = "all at once" if batched else "one at a time"
        for threads in thread_counts:
            seconds, out = time_path(batched, threads, problems, datas, cfg)
            print(f"  {label:13s} {threads} thread(s): {seconds:7.1f} s   "
                  f"{flops / seconds / 1e9:6.1f} GFLOP/s")
            if batched not in best or seconds < best[batched][0]:
                best[batched] = (seconds, threads, out)
    (t_s, n_s, single), (t_b, n_b, batched_out) = best[False], best[True]
    print(f"  speed ratio, each path at its best ({n_s} vs {n_b} thread(s)): {t_s / t_b:.2f}x")
    acc_b = evaluate_runs(problems, datas, batched_out, cfg, progress=False)
    acc_s = evaluate_runs(problems, datas, single, cfg, progress=False)
    acc_diff = max(np.nanmax(np.abs(acc_b[k] - acc_s[k])) for k in acc_b)
    loss_diff = np.abs(batched_out["loss_ST"] - single["loss_ST"]).max()
    print(f"  max |accuracy difference|: {acc_diff:.4f}   max |loss difference|: {loss_diff:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-steps", type=int, default=20,
                        help="Adam steps per run for the default-shape sweep (timing only)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    probe = dict(n_fit=300, n_score=300, device="cpu")
    bench("smoke sweep", SimulationConfig.for_profile("smoke", **probe), args.threads)
    bench("default sweep's shapes",
          SimulationConfig.for_profile("default", steps=args.default_steps, **probe), args.threads)


if __name__ == "__main__":
    main()

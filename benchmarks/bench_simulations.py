"""Train the same simulation sweep all runs at once and one run at a time; print the speed ratio.

Usage: .venv/bin/python benchmarks/bench_simulations.py [--profile default] [--steps 40]
Both paths see identical weights, samples and masks; the script prints the training wall time
of each, their ratio (target >= 5x on 2 cores), and the largest difference in any probe
accuracy and any training loss between the two.
"""

import argparse

import numpy as np
import torch

from ipta.simulations import SimulationConfig, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--steps", type=int, default=40, help="Adam steps per run (few: both paths)")
    args = parser.parse_args()
    cfg = SimulationConfig.for_profile(args.profile, steps=args.steps, n_fit=300, n_score=300,
                                       device="cpu")
    batched, meta_b = run_sweep(cfg, batched=True, progress=False)
    single, meta_s = run_sweep(cfg, batched=False, progress=False)
    n_runs = len(meta_b["settings"])
    acc_diff = max(np.nanmax(np.abs(batched[k] - single[k])) for k in batched if k.startswith("acc_"))
    loss_diff = np.abs(batched["loss_ST"] - single["loss_ST"]).max()
    print(f"profile {args.profile}: {n_runs} runs x {cfg.steps} steps, batch {cfg.batch_size}, "
          f"hidden {cfg.hidden}, torch threads {torch.get_num_threads()}")
    print(f"one at a time: {meta_s['train_seconds']:.1f} s   all at once: {meta_b['train_seconds']:.1f} s"
          f"   speed ratio: {meta_s['train_seconds'] / meta_b['train_seconds']:.2f}x")
    print(f"max |accuracy difference|: {acc_diff:.4f}   max |loss difference|: {loss_diff:.2e}")


if __name__ == "__main__":
    main()

"""Train the same simulation sweeps all runs at once and one run at a time; print the speed ratio.

Usage: .venv/bin/python benchmarks/bench_simulations.py [--default-steps 200] [--threads 1 2]
                                                          [--rounds 3]

Two sweeps: the smoke profile's (at its own steps) and the default profile's shapes (105 runs at
the default width, fewer steps than its 800: past the workers' start, the time per step does not
depend on the step count). Each path runs in one process with every thread count given, and over
the cores (the runs shared out in contiguous parts, one worker process of one thread per core:
how the chapter trains, :func:`ipta.simulations.sweep.train_over_cores`, and the same split for
the one-at-a-time loop). Every setting is timed ``--rounds`` times, the rounds interleaved, and
its median is taken; the ratio compares each path at ITS best setting, so neither is handicapped
by a setting that suits the other. It also prints the chapter's way (all at once over the cores)
against the plain loop a user would write (one run at a time in one process). Both paths see
identical weights, samples and masks; the script prints the largest difference in any probe
accuracy and any training loss between them (at their best settings), and the achieved model
FLOP/s of each path, which shows when a path is bound by arithmetic rather than by per-operation
overhead.

Then it takes one batched run at its best thread count apart with torch's profiler: the share
of its time in matrix products, in BatchNorm and ReLU (with the layout copies around them), in
Adam, in building the inputs, and the rest; and the ceiling of the speed ratio if everything
but the matrix products cost nothing (one-at-a-time time / batched matrix-product time).
"""

import argparse
import time
from collections import defaultdict

import numpy as np

from ipta.simulations.config import Config as SimulationConfig
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


CORES = 0
"""The thread setting that means: over the cores, one worker process of one thread each."""


def time_path(batched: bool, threads: int, problems, datas, cfg) -> tuple[float, dict]:
    """Training wall time (seconds) and result of one path with ``threads`` torch threads in
    this process, or over the cores (``threads == CORES``)."""
    import torch

    from ipta.simulations.sweep import train_over_cores

    n_pad = max(p.setting.n_observed for p in problems)
    start = time.perf_counter()
    if batched and threads == CORES:
        out = train_over_cores(problems, datas, cfg, torch.device("cpu"), progress=False)
    elif batched:
        out = train_batched(problems, datas, cfg, progress=False, threads=threads)
    elif threads == CORES:
        out = stack_runs(single_over_cores(problems, datas, cfg, n_pad))
    else:
        out = stack_runs([train_single(p, d, cfg, n_pad, threads=threads)
                          for p, d in zip(problems, datas)])
    return time.perf_counter() - start, out


def single_over_cores(problems, datas, cfg, n_pad) -> list[dict]:
    """One run at a time, the runs shared out over the cores as train_over_cores shares them."""
    from ipta.parallel import parallel_map
    from ipta.simulations.sweep import core_parts

    tasks = [(problems[part], datas[part], cfg, n_pad) for part in core_parts(len(problems))]
    return [run for done in parallel_map(_single_part, tasks, jobs=len(tasks)) for run in done]


def _single_part(task) -> list[dict]:
    problems, datas, cfg, n_pad = task
    return [train_single(p, d, cfg, n_pad, threads=1) for p, d in zip(problems, datas)]


def setting_name(threads: int) -> str:
    return "over the cores" if threads == CORES else f"{threads} thread(s)"


# Profiler op names -> the part of a training step they belong to.
PARTS = {"matrix products": ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm"),
         "BatchNorm, ReLU and layout copies": ("batch_norm", "aten::clamp_min",
                                               "aten::threshold_backward", "aten::copy_",
                                               "aten::relu"),
         "Adam": ("adam",),
         "building inputs": ("aten::one_hot", "aten::scatter", "aten::gather", "aten::fill_",
                             "aten::zero_")}


def anatomy(problems, datas, cfg, threads: int) -> dict[str, float]:
    """Seconds of self CPU time per part of :data:`PARTS` (and ``other``) in one batched run."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_batched(problems, datas, cfg, progress=False, threads=threads)
    seconds: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        part = next((name for name, keys in PARTS.items()
                     if any(k in event.key.lower() for k in keys)), "other")
        seconds[part] += event.self_cpu_time_total / 1e6
    return dict(seconds)


def bench(name: str, cfg: SimulationConfig, thread_counts: list[int], rounds: int) -> None:
    settings = sweep_settings(cfg)
    problems = [make_problem(s, cfg) for s in settings]
    datas = [training_data(p, cfg) for p in problems]
    flops = model_flops(settings, cfg)
    print(f"\n{name}: {len(settings)} runs x {cfg.steps} steps, batch {cfg.batch_size}, "
          f"hidden {cfg.hidden}, {flops / 1e9:.1f} GFLOP of model arithmetic; "
          f"medians of {rounds} rounds")
    warm = cfg.replace(steps=2)  # first calls pay for lazy set-up (and workers' start)
    options = [*thread_counts, CORES]
    for threads in options:
        for batched in (False, True):
            time_path(batched, threads, problems[:4], datas[:4], warm)
    times, outs = defaultdict(list), {}
    for _ in range(rounds):  # interleaved, so the machine's drift reaches every setting alike
        for batched in (False, True):
            for threads in options:
                seconds, outs[batched, threads] = time_path(batched, threads, problems, datas,
                                                            cfg)
                times[batched, threads].append(seconds)
    best = {}
    for batched in (False, True):
        label = "all at once" if batched else "one at a time"
        for threads in options:
            seconds = float(np.median(times[batched, threads]))
            spread = ", ".join(f"{t:.1f}" for t in times[batched, threads])
            print(f"  {label:13s} {setting_name(threads):15s} {seconds:7.1f} s ({spread})   "
                  f"{flops / seconds / 1e9:6.1f} GFLOP/s")
            if batched not in best or seconds < best[batched][0]:
                best[batched] = (seconds, threads, outs[batched, threads])
    (t_s, n_s, single), (t_b, n_b, batched_out) = best[False], best[True]
    print(f"  speed ratio, each path at its best setting ({setting_name(n_s)} vs "
          f"{setting_name(n_b)}): {t_s / t_b:.2f}x")
    plain = min(float(np.median(times[False, t])) for t in thread_counts)
    stacked = min(float(np.median(times[True, t])) for t in thread_counts)
    chapter = float(np.median(times[True, CORES]))
    print(f"  in one process, each path at its best thread count: {plain / stacked:.2f}x")
    print(f"  the chapter's way (all at once over the cores) against a plain loop in one process "
          f"at its best thread count: {plain / chapter:.2f}x")
    acc_b = evaluate_runs(problems, datas, batched_out, cfg, progress=False)
    acc_s = evaluate_runs(problems, datas, single, cfg, progress=False)
    acc_diff = max(np.nanmax(np.abs(acc_b[k] - acc_s[k])) for k in acc_b)
    loss_diff = np.abs(batched_out["loss_ST"] - single["loss_ST"]).max()
    first = np.abs(batched_out["loss_ST"][:, 0] - single["loss_ST"][:, 0]).max()
    print(f"  max |accuracy difference|: {acc_diff:.4f}   max |loss difference|: {loss_diff:.2e}"
          f" (float rounding at the first step, {first:.1e}, grown over training)")
    profiled = 1 if n_b == CORES else n_b  # over the cores, each worker runs on one thread
    parts = anatomy(problems, datas, cfg, profiled)
    total = sum(parts.values())
    print(f"  where the batched run's time goes ({profiled} thread(s) in one process, "
          f"profiled):")
    for part, sec in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"    {part:36s} {100 * sec / total:5.1f}%")
    matmul = parts.get("matrix products", 0.0) * t_b / total
    print(f"  ceiling of the ratio with only the matrix products left: {t_s / matmul:.1f}x "
          f"({flops / matmul / 1e9:.0f} GFLOP/s in them)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-steps", type=int, default=200,
                        help="Adam steps per run for the default-shape sweep (timing only; "
                             "enough that starting the workers is a small part)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3,
                        help="timings of every setting, interleaved; their median is used")
    args = parser.parse_args()
    probe = dict(n_fit=300, n_score=300, device="cpu")
    bench("smoke sweep", SimulationConfig.for_profile("smoke", **probe), args.threads,
          args.rounds)
    bench("default sweep's shapes",
          SimulationConfig.for_profile("default", steps=args.default_steps, **probe), args.threads,
          args.rounds)


if __name__ == "__main__":
    main()

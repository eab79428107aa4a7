"""SAE training speed: ours per variant, and the same shapes through dictionary_learning.

Prints, per variant: activations per second, the achieved FLOP/s (10 B D F per step: the
encoder's and decoder's matrix products forward, 2 B D F each, and the three a step needs
backward: both weights' gradients and the codes'), its share of a plain matmul of the same shape
timed in the same run, the structured variant's extra cost over p-annealing, and the same steps
through the matching trainer of ``dictionary_learning`` (PyPI ``dictionary-learning``) with the
ratio ours/theirs and the MSE and L0 each reaches on held-out data after the same steps. The
structured SAE (and the adapter) have no trainer there; they are set against its p-annealing
trainer, the one the paper's structured SAE extends.

The shared machines this runs on change speed by tens of percent from minute to minute, so the
two sides run in turn, ``--repeats`` rounds (ours, theirs, ours, ...), and the table gives the
median of each side and the median of the rounds' ratios.

dictionary_learning pins another torch and many heavy packages, so it lives in its own venv
(``--peer-python``, default /tmp/dl-venv/bin/python; create it with
``python -m venv /tmp/dl-venv && /tmp/dl-venv/bin/pip install torch==2.13.0 einops numpy tqdm &&
/tmp/dl-venv/bin/pip install --no-deps dictionary-learning==0.1.0``). Its package imports
nnsight/datasets at import time for features we do not use; the peer script stubs those modules.
Both sides get identical data (planted sparse codes, written to a temporary .npy) and thread count.

    python benchmarks/bench_sae.py                 # CPU-sized shapes
    python benchmarks/bench_sae.py --paper-shapes  # D=512 (Pythia-70M), F=16384, B=10000 (GPU)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ipta.sae.model import SparseAutoencoder
from ipta.sae.metrics import l0, mse
from ipta.sae.train import train_sae

PEER = r"""
import json, sys, time, types
import numpy as np, torch
for name in ("nnsight", "datasets", "zstandard"):  # imported by modules we never call
    stub = types.ModuleType(name); stub.LanguageModel = stub.load_dataset = object
    sys.modules[name] = stub
from dictionary_learning.trainers import TopKTrainer, BatchTopKTrainer, PAnnealTrainer
a = json.loads(sys.argv[1]); torch.set_num_threads(a["threads"])
X = torch.from_numpy(np.load(a["data"])); V = torch.from_numpy(np.load(a["val"]))
common = dict(steps=a["steps"], activation_dim=X.shape[1], dict_size=a["F"], layer=0,
              lm_name="bench", lr=a["lr"], warmup_steps=min(200, a["steps"] - 1), seed=0,
              device=a["device"])
make = {"topk": lambda: TopKTrainer(k=a["k"], threshold_start_step=0, **common),
        "batchtopk": lambda: BatchTopKTrainer(k=a["k"], threshold_start_step=0, **common),
        # Their default p_end=0 with 'Lp' divides by zero at the last p step; p_end=0.1 with
        # 'Lp^p' gives the same p values as ours (1, 0.9, ..., 0.1).
        "panneal": lambda: PAnnealTrainer(sparsity_warmup_steps=None, sparsity_function="Lp^p",
                                          p_end=0.1, anneal_start=a["steps"] // 2, **common)}
out = {}
g = torch.Generator().manual_seed(0)
for v in a["variants"]:
    tr = make[v]()
    idx = [torch.randint(len(X), (a["B"],), generator=g) for _ in range(a["steps"])]
    for s in range(2):
        tr.update(s, X[idx[s]].to(a["device"]))
    if a["device"] == "cuda": torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(2, a["steps"]):
        tr.update(s, X[idx[s]].to(a["device"]))
    if a["device"] == "cuda": torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        xh, f = tr.ae(V.to(a["device"]), output_features=True)
    out[v] = {"seconds": dt, "acts_per_s": (a["steps"] - 2) * a["B"] / dt,
              "mse": float(((xh.cpu() - V) ** 2).mean()), "l0": float((f != 0).sum(1).float().mean())}
print(json.dumps(out))
"""


class InMemory:
    def __init__(self, x_ND: torch.Tensor):
        self.x = x_ND

    def sample(self, generator, n, rows=slice(None)):
        return self.x[torch.randint(len(self.x), (n,), generator=generator)[rows]]


def planted_data(n: int, d: int, n_true: int, seed: int = 0) -> np.ndarray:
    """Sparse non-negative combinations of random unit directions, plus a little noise."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(n_true, d)) / np.sqrt(d)
    codes = (rng.random((n, n_true)) < 16 / n_true) * rng.exponential(size=(n, n_true))
    return (codes @ dirs * 10 + 0.1 * rng.normal(size=(n, d))).astype(np.float32)


def ours(variant: str, x: torch.Tensor, val: torch.Tensor, a: argparse.Namespace) -> dict:
    hp = {"topk": {"k": a.k}, "batchtopk": {"k": a.k},
          "panneal": {"anneal_start": a.steps // 2, "anneal_end": a.steps - 1,
                      "sparsity_warmup": 0},
          "structured": {"anneal_start": a.steps // 2, "anneal_end": a.steps - 1,
                         "sparsity_warmup": 0, "alpha": 0.1, "rank": a.rank},
          "adapter": {"anneal_start": a.steps // 2, "anneal_end": a.steps - 1,
                      "sparsity_warmup": 0, "alpha": 0.1, "rank": a.rank}}[variant]
    data = InMemory(x.to(a.device))
    seconds = {}
    # Time 2 steps and all steps: the difference excludes set-up (normalisation, optimiser),
    # as the peer's timing excludes its first 2 steps.
    for steps in (2, a.steps):
        sae = SparseAutoencoder(x.shape[1], a.F, variant, hp).to(a.device)
        t0 = time.perf_counter()
        train_sae(sae, data, steps=steps, batch_size=a.B, lr=a.lr,
                  warmup_steps=min(200, a.steps - 1), progress=False)
        if a.device == "cuda":
            torch.cuda.synchronize()
        seconds[steps] = time.perf_counter() - t0
    dt = seconds[a.steps] - seconds[2]
    with torch.no_grad():
        codes = sae.encode(val.to(a.device))
        xhat = sae.decode(codes).cpu().numpy()
    return {"seconds": dt, "acts_per_s": (a.steps - 2) * a.B / dt,
            "mse": mse(val.numpy(), xhat), "l0": l0(codes.cpu().numpy())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--D", type=int, default=576)
    p.add_argument("--F", type=int, default=2048)
    p.add_argument("--B", type=int, default=512)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--steps", type=int, default=60)  # enough for start-up costs to wash out
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--paper-shapes", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--peer-python", default="/tmp/dl-venv/bin/python")
    p.add_argument("--variants", default="topk,batchtopk,panneal,structured,adapter")
    p.add_argument("--repeats", type=int, default=3, help="rounds of ours-then-theirs")
    a = p.parse_args()
    if a.paper_shapes:
        a.D, a.F, a.B = 512, 16384, 10_000
    variants = a.variants.split(",")
    x_np = planted_data(max(20 * a.B, 50_000), a.D, 4 * a.D)
    val_np = planted_data(4096, a.D, 4 * a.D, seed=0)[:4096]
    x, val = torch.from_numpy(x_np), torch.from_numpy(val_np)
    flops_per_step = 10 * a.B * a.D * a.F
    print(f"shapes D={a.D} F={a.F} B={a.B}, {a.steps} steps, device {a.device}, "
          f"{torch.get_num_threads()} threads, {a.repeats} rounds")
    rounds_ours, rounds_peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/x.npy", x_np)
        np.save(f"{tmp}/v.npy", val_np)
        for _ in range(a.repeats):
            rounds_ours.append({v: ours(v, x, val, a) for v in variants})
            rounds_peer.append(peer_round(a, variants, tmp))
    mine = {v: _median_row([r[v] for r in rounds_ours]) for v in variants}
    peer = {v: _median_row([r[PEER_OF[v]] for r in rounds_peer if PEER_OF[v] in r])
            for v in variants if all(PEER_OF[v] in r for r in rounds_peer)}
    ratio = {v: float(np.median([o[v]["acts_per_s"] / t[PEER_OF[v]]["acts_per_s"]
                                 for o, t in zip(rounds_ours, rounds_peer)]))
             for v in peer}
    peak = matmul_peak(a.D, a.F, a.B, a.device)
    print(f"plain matmul peak on this device (fp32, [B, D] @ [D, F]): {peak:.1f} GFLOP/s")
    print(f"{'variant':11s} {'ours act/s':>11s} {'GFLOP/s':>8s} {'of peak':>8s} {'theirs act/s':>13s} "
          f"{'ours/theirs':>11s} {'MSE ours':>9s} {'MSE theirs':>10s} {'L0 ours':>8s} "
          f"{'L0 theirs':>9s}")
    for v, r in mine.items():
        t = peer.get(v, {})
        gflops = flops_per_step * r['acts_per_s'] / a.B / 1e9
        name = v if PEER_OF[v] == v else f"{v}*"
        print(f"{name:11s} {r['acts_per_s']:11.0f} {gflops:8.1f} {gflops / peak:8.0%} "
              f"{t.get('acts_per_s', float('nan')):13.0f} {ratio.get(v, float('nan')):11.2f} "
              f"{r['mse']:9.4g} {t.get('mse', float('nan')):10.4g} {r['l0']:8.1f} "
              f"{t.get('l0', float('nan')):9.1f}")
    if any(PEER_OF[v] != v for v in mine):
        print("* against dictionary_learning's p-annealing trainer (it has no structured SAE)")
    print("GFLOP/s count a dense step's 10 B D F; top-k decodes only its k rows per sample, so "
          "its figure is dense-equivalent and may pass the peak")
    ceiling = peak * 1e9 * a.B / flops_per_step  # activations/s of the bare products at peak
    print(f"a dense step that were nothing but its five products at the peak would reach "
          f"{ceiling:.0f} act/s" + "".join(
              f"; {ceiling / t['acts_per_s']:.2f}x their {v}" for v, t in peer.items()
              if v in ("panneal",)))
    if "structured" in mine and "panneal" in mine:
        extra = mine["panneal"]["acts_per_s"] / mine["structured"]["acts_per_s"] - 1
        print(f"structured costs {extra:+.1%} time per step over p-annealing (rank {a.rank})")
    if a.device == "cuda":
        print("bf16 peak fraction: divide GFLOP/s by the GPU's dense bf16 peak "
              "(these runs are fp32)")


PEER_OF = {"topk": "topk", "batchtopk": "batchtopk", "panneal": "panneal",
           "structured": "panneal", "adapter": "panneal"}
"""Our variant -> the dictionary_learning trainer it is timed against."""


def peer_round(a: argparse.Namespace, variants: list[str], tmp: str) -> dict:
    """One round of dictionary_learning's trainers in their own environment (empty if absent)."""
    if not Path(a.peer_python).exists():
        print(f"no peer environment at {a.peer_python}: dictionary_learning skipped")
        return {}
    args = {"data": f"{tmp}/x.npy", "val": f"{tmp}/v.npy", "F": a.F, "B": a.B, "k": a.k,
            "steps": a.steps, "lr": a.lr, "device": a.device, "threads": torch.get_num_threads(),
            "variants": sorted({PEER_OF[v] for v in variants})}
    run = subprocess.run([a.peer_python, "-c", PEER, json.dumps(args)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        print("dictionary_learning run failed:", run.stderr[-2000:])
        return {}
    return json.loads(run.stdout.strip().splitlines()[-1])


def _median_row(rows: list[dict]) -> dict:
    return {key: float(np.median([r[key] for r in rows])) for key in rows[0]}


def matmul_peak(D: int, F: int, B: int, device: str, repeats: int = 20) -> float:
    """GFLOP/s of a plain fp32 matmul of the SAE's own shape ([B, D] @ [D, F]), best of
    ``repeats``: the hardware limit these training steps are measured against."""
    x = torch.randn(B, D, device=device)
    w = torch.randn(D, F, device=device)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        x @ w
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * B * D * F / best / 1e9


if __name__ == "__main__":
    sys.exit(main())

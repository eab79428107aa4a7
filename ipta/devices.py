"""Choosing where tensors live: a GPU when one is present and asked for, else the CPU."""

from __future__ import annotations

import contextlib

import re

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
DEVICE_HELP = "one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'"


def device_problem(name: str) -> str | None:
    """``None`` if ``name`` names a device this machine has, else what is wrong (for the
    config's ``device`` fields: checked before any computation). ``auto`` and ``cpu`` are
    always present; torch is imported only to look for a GPU that was asked for."""
    if name not in DEVICE_CHOICES and not re.fullmatch(r"cuda:\d+", name):
        return f"is not a device; choose {DEVICE_HELP}"
    if name in ("auto", "cpu"):
        return None
    import torch

    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            return "was asked for but this machine has no CUDA device; use 'auto' or 'cpu'"
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            return (f"was asked for but this machine has {torch.cuda.device_count()} CUDA "
                    f"device(s) (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
        return None
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return "was asked for but MPS is not available here; use 'auto' or 'cpu'"
    return None


def pick_device(preference: str = "auto") -> "torch.device":
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit device that is absent is an error."""
    import torch

    problem = device_problem(preference)
    if problem is not None:
        raise ValueError(f"device {preference!r} {problem}")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(preference)


def describe_device(device: "torch.device") -> str:
    """A human-readable name of the device, for the run-settings table of each page."""
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the enclosed torch code on ``n`` intra-op threads, restoring the previous number.

    Small models (the theory and simulation chapters) run faster on one thread: with a few
    thousand numbers per op, extra threads mostly add synchronisation, which costs several times
    the work on a busy 2-core machine.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

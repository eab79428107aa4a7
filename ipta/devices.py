"""Choosing where tensors live: a GPU when one is present and asked for, else the CPU."""

from __future__ import annotations

import contextlib

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(preference: str = "auto") -> "torch.device":
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit device that is absent is an error."""
    import torch

    if preference not in DEVICE_CHOICES and not preference.startswith("cuda:"):
        raise ValueError(f"device {preference!r} is not allowed; choose one of "
                         f"{', '.join(DEVICE_CHOICES)} or 'cuda:N'")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {preference!r} was asked for but CUDA is not available; "
                         "use 'auto' or 'cpu'")
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

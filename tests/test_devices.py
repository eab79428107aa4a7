"""Specification of ipta.devices: a device name is checked before any computation, ``auto``
finds the best one present, and a thread setting is restored however the block ends."""

import pytest
import torch

from ipta.devices import describe_device, device_problem, pick_device, torch_threads

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_auto_and_the_cpu_are_always_present(name):
    assert device_problem(name) is None


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "CPU", ""])
def test_a_name_that_is_no_device_is_refused_naming_the_choices(bad):
    assert device_problem(bad) == ("is not a device; choose one of 'auto', 'cpu', 'cuda', "
                                   "'cuda:N', 'mps'")
    with pytest.raises(ValueError, match=rf"device '{bad}' is not a device"):
        pick_device(bad)


@NO_CUDA
@pytest.mark.parametrize("asked", ["cuda", "cuda:1"])
def test_an_absent_gpu_is_named_as_absent_not_as_a_typo(asked):
    assert "this machine has no CUDA device; use 'auto' or 'cpu'" in device_problem(asked)


@NO_CUDA
def test_auto_falls_back_to_the_cpu_without_a_gpu():
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        pytest.skip("this machine has MPS")
    assert pick_device("auto") == torch.device("cpu") == pick_device("cpu")


def test_the_cpu_is_described_with_its_thread_count():
    assert describe_device(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"


def test_thread_setting_is_restored_after_training():
    """Training on one torch thread leaves the caller's thread count as it was."""
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_thread_setting_is_restored_when_the_block_raises():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a count the block changes, whatever this machine's default
    try:
        with pytest.raises(RuntimeError), torch_threads(1):
            raise RuntimeError("interrupted")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

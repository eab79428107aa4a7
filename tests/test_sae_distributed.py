"""Specification of ipta.sae.distributed: one SAE trained by two processes (gloo, as under
torchrun) ends where a single process with the same global batch ends, for every mechanism,
including those whose loss reads the whole batch; and a killed two-process run resumes."""

import multiprocessing
import os
import time

import pytest
import torch

from ipta.sae.distributed import SampleGroup

pytestmark = pytest.mark.slow

# Each mechanism with the terms that couple the samples of a batch switched on: AuxK (variance
# of the global residual; dead_after_tokens is short so features do die), batch-top-k's global
# selection, p-annealing's queue and the nuclear norm of the global code matrix.
HPARAMS = {"topk": {"k": 2, "auxk_alpha": 0.5, "k_aux": 4},
           "batchtopk": {"k": 2, "auxk_alpha": 0.5, "k_aux": 4},
           "panneal": {"anneal_start": 4, "anneal_end": 14, "n_updates": 4, "sparsity_warmup": 3,
                       "queue": 3},
           "structured": {"anneal_start": 4, "anneal_end": 14, "n_updates": 4,
                          "sparsity_warmup": 3, "queue": 3, "alpha": 0.3, "rank": 3},
           "adapter": {"anneal_start": 4, "anneal_end": 14, "n_updates": 4, "sparsity_warmup": 3,
                       "alpha": 0.3, "rank": 3}}
STEPS, BATCH = 16, 32


class Planted:
    """Sparse combinations of 12 random directions in 8 dimensions; the process ends abruptly
    (no clean-up, as when killed) when it draws training batch number ``die_at`` (counted over
    every SAE it trains, in ``drawn``)."""

    def __init__(self, die_at=None, drawn=None):
        self.dirs = torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
        self.die_at, self.drawn = die_at, drawn if drawn is not None else [0]

    def sample(self, generator, n, rows=slice(None)):
        if n == BATCH:
            self.drawn[0] += 1
            if self.drawn[0] == self.die_at:
                os._exit(3)
        z = (torch.rand(n, 12, generator=generator) < 0.15) * torch.rand(n, 12,
                                                                          generator=generator)
        return (z @ self.dirs)[rows]


def _train(names, ckpt=None, die_at=None):
    from ipta.sae.model import SparseAutoencoder
    from ipta.sae.train import train_sae

    results, drawn = {}, [0]
    for name in names:
        sae = SparseAutoencoder(8, 64, name, HPARAMS[name], seed=1)
        history = train_sae(sae, Planted(die_at, drawn), steps=STEPS, batch_size=BATCH, lr=1e-2,
                            warmup_steps=3, seed=7, n_normalisation=64, dead_after_tokens=BATCH,
                            evaluate=lambda s: {}, eval_every=4,
                            checkpoint_dir=None if ckpt is None else f"{ckpt}/{name}",
                            checkpoint_every=5 if ckpt else 0, progress=False)
        results[name] = ({k: v.clone() for k, v in sae.state_dict().items()}, history)
    return results


def _rank(rank, world, init, names, ckpt=None, die_at=None):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        return _train(names, ckpt, die_at)
    finally:
        dist.destroy_process_group()


def _two_ranks(tmp_path, tag, names, ckpt=None):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        return pool.starmap(_rank, [(r, 2, tmp_path / f"init-{tag}", names, ckpt)
                                    for r in range(2)])


def _assert_same_training(single, ranks, exact=False):
    for name, (ref_state, ref_history) in single.items():
        for rank, result in enumerate(ranks):
            state, history = result[name]
            for key, value in ref_state.items():
                if exact:
                    assert torch.equal(state[key], value), (name, rank, key)
                else:
                    torch.testing.assert_close(state[key], value, rtol=1e-4, atol=1e-5,
                                               msg=f"{name}, rank {rank}: {key} differs")
        rank0_history = ranks[0][name][1]
        assert [r["step"] for r in rank0_history] == [r["step"] for r in ref_history]
        for a, b in zip(rank0_history, ref_history):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-4), name
            assert a["dead_fraction_train"] == b["dead_fraction_train"], name


def test_two_processes_train_the_sae_one_process_trains_with_the_same_global_batch(tmp_path):
    single = _train(sorted(HPARAMS))
    ranks = _two_ranks(tmp_path, "a", sorted(HPARAMS))
    _assert_same_training(single, ranks)
    # The terms that couple samples were active: some features died, so AuxK contributed.
    assert any(r["dead_fraction_train"] > 0 for r in single["topk"][1])
    assert ranks[1]["topk"][1] == []  # only rank 0 evaluates


def test_a_killed_two_process_run_resumes_to_where_an_uninterrupted_one_ends(tmp_path):
    names = ["batchtopk", "structured"]  # the first finishes; the second dies at its step 12
    uninterrupted = _two_ranks(tmp_path, "full", names)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(r, 2, tmp_path / "init-killed", names,
                                             tmp_path / "ckpt", STEPS + 13)) for r in range(2)]
    for p in procs:
        p.start()
    while all(p.exitcode is None for p in procs):
        time.sleep(0.05)
    for p in procs:  # one died: the other is killed, as a scheduler would
        p.kill()
        p.join()
    assert procs[0].exitcode != 0 or procs[1].exitcode != 0
    assert sorted(p.name for p in (tmp_path / "ckpt" / "batchtopk").glob("step_*")) == [
        "step_00000015", "step_00000016"]
    assert sorted(p.name for p in (tmp_path / "ckpt" / "structured").glob("step_*")) == [
        "step_00000005", "step_00000010"]
    resumed = _two_ranks(tmp_path, "resumed", names, ckpt=tmp_path / "ckpt")
    _assert_same_training({n: uninterrupted[0][n] for n in names}, resumed, exact=True)


def test_a_global_batch_that_does_not_split_evenly_is_refused_naming_both_numbers():
    with pytest.raises(ValueError, match="batch_size 30 must be a multiple .* \\(4\\)"):
        SampleGroup(rank=1, size=4).rows(30)


def test_one_process_is_the_identity():
    group = SampleGroup()
    x = torch.randn(5, 3)
    assert group.mean(x) is x and group.cat_rows(x) is x and group.rows(5) == slice(0, 5)
    assert torch.equal(group.largest(x.flatten(), 4).sort().values,
                       x.flatten().topk(4).values.sort().values)


SMOKE = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
             max_pairs_per_concept=3, variants=("structured",), seeds=(0,))


def _chapter_run(rank, world, cache, init):
    """The SAE chapter's structured run through the cache, as `ipta train-sae` trains it."""
    os.environ["IPTA_CACHE_DIR"] = str(cache)
    torch.set_num_threads(1)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank,
                                world_size=world)
    from ipta.sae import runs
    from ipta.sae.config import Config

    cfg = Config.for_profile("smoke", **SMOKE)
    store = runs.activations(cfg, progress=False)
    [run], _, _ = runs.train_all(cfg, store, runs.concept_data(cfg, progress=False),
                                 progress=False)
    if world > 1:
        dist.destroy_process_group()
    files = sorted(p.name for p in run.directory.iterdir())
    return run.directory.name, files, run.final, run.sae().state_dict()


def test_the_chapters_run_trained_by_two_processes_is_the_entry_one_process_writes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        [single] = pool.starmap(_chapter_run, [(0, 1, tmp_path / "one", None)])
    with ctx.Pool(2) as pool:
        both = pool.starmap(_chapter_run, [(r, 2, tmp_path / "two", tmp_path / "init")
                                           for r in range(2)])
    name, files, final, state = single
    assert "manifest.json" in files and "result.json" in files
    for r_name, r_files, r_final, r_state in both:
        assert (r_name, r_files) == (name, files)  # the same cache key, the same entry
        assert r_final["val_l0"] == pytest.approx(final["val_l0"], rel=1e-5)
        assert r_final["mean_pcc"] == pytest.approx(final["mean_pcc"], abs=1e-5)
        for key, value in state.items():
            torch.testing.assert_close(r_state[key], value, rtol=1e-4, atol=1e-4)
    assert not list((tmp_path / "two" / "sae_checkpoints").glob("*/step_*"))


def test_train_sae_refuses_a_batch_the_processes_cannot_share_before_any_work(monkeypatch,
                                                                              capsys, tmp_path):
    from ipta import cli

    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it
    assert cli.main(["train-sae", "--profile", "smoke", "-p", "batch_size", "64"]) == 2
    assert "'batch_size': 64 is not a multiple of the 3 processes" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was extracted or trained

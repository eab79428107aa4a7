"""Sharded activation extraction: two processes (torch.distributed, gloo, as under torchrun)
each extract their share of the windows into one cache entry, and the store equals the one a
single process writes, with one manifest."""

import multiprocessing
import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ARGS = dict(n_tokens=700, context_length=24, batch_size=3, dtype="float32", shard_tokens=128,
            max_windows_per_doc=1, progress=False)


def _extract(rank, world_size, cache, init):
    os.environ["IPTA_CACHE_DIR"] = str(cache)
    if world_size > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank,
                                world_size=world_size)
    from ipta.cache import check_entry
    from ipta.lm.corpus import cached_activations

    store = cached_activations("tiny:llama", device="cpu", in_memory=True, **ARGS)
    rows = store.rows(np.arange(store.n_tokens))
    result = (rows, store.meta, sorted(p.name for p in store.directory.iterdir()),
              check_entry(store.directory))
    if world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def test_two_ranks_write_the_store_one_process_writes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        [single] = pool.starmap(_extract, [(0, 1, tmp_path / "one", tmp_path / "unused")])
    with ctx.Pool(2) as pool:
        both = pool.starmap(_extract, [(r, 2, tmp_path / "two", tmp_path / "init")
                                       for r in range(2)])
    rows, meta, files, problem = single
    assert meta["n_tokens"] == ARGS["n_tokens"] and len(meta["shard_rows"]) > 2
    for r_rows, r_meta, r_files, r_problem in both:
        np.testing.assert_array_equal(r_rows, rows)
        assert r_meta == meta and r_files == files and r_problem is None
    assert "_parts" not in files and "manifest.json" in files
    assert not list((tmp_path / "two" / "sae_activations").glob(".*tmp*"))

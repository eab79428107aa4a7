"""Specification of ipta.lm.corpus: offline prose, token windows and activation shards."""

import importlib.util

import numpy as np
import pytest
import torch

from ipta.lm.activations import hidden_states
from ipta.lm.corpus import (ActivationStore, build_activation_shards, token_prefix, token_windows)
from ipta.lm.tiny_models import tiny_model, tiny_tokenizer

TEXTS = ["the cat sat on the mat", "a dog ran", "birds fly over the hills and far away"]


@pytest.mark.parametrize("add_bos", [True, False])
def test_windows_start_with_the_tokenizer_prefix_and_cover_every_token(add_bos):
    tok = tiny_tokenizer(add_bos=add_bos)
    windows = list(token_windows(tok, TEXTS, context_length=8))
    prefix = token_prefix(tok)
    assert prefix == ([tok.bos_token_id] if add_bos else [])
    assert all(w[:len(prefix)] == prefix and len(w) <= 8 for w in windows)
    body = sum(len(w) - len(prefix) for w in windows)
    assert body == sum(len(t) for t in TEXTS)  # a character tokenizer: one token per char


def test_max_windows_per_doc_keeps_only_the_first_windows():
    tok = tiny_tokenizer(add_bos=True)
    windows = list(token_windows(tok, TEXTS, context_length=8, max_windows_per_doc=1))
    assert len(windows) == len(TEXTS)


@pytest.mark.parametrize("add_bos", [True, False])
def test_shards_hold_every_real_token_and_no_bos_or_padding(add_bos, tmp_path):
    """Rows equal a plain forward of each window alone, with BOS and padding rows left out."""
    tok, model = tiny_tokenizer(add_bos=add_bos), tiny_model("llama", seed=0)
    meta = build_activation_shards(model, tok, TEXTS, tmp_path, n_tokens=10_000,
                                   context_length=8, batch_size=3, dtype="float32",
                                   shard_tokens=7, progress=False)
    skip = int(add_bos)
    expected = []
    for w in token_windows(tok, TEXTS, context_length=8):
        ids = torch.tensor([w])
        expected.append(hidden_states(model, ids, torch.ones_like(ids))[0, skip:].numpy())
    expected = np.concatenate(expected)
    store = ActivationStore(tmp_path, in_memory=False)
    assert meta["n_tokens"] == store.n_tokens == len(expected) == sum(len(t) for t in TEXTS)
    assert all(r <= 7 for r in meta["shard_rows"]) and len(meta["shard_rows"]) > 1
    np.testing.assert_allclose(store.rows(np.arange(store.n_tokens)), expected, atol=1e-5)


def test_extraction_stops_at_n_tokens_and_stores_the_asked_dtype(tmp_path):
    tok, model = tiny_tokenizer(add_bos=True), tiny_model("llama", seed=0)
    meta = build_activation_shards(model, tok, TEXTS, tmp_path, n_tokens=11, context_length=8,
                                   batch_size=2, dtype="float16", progress=False)
    store = ActivationStore(tmp_path)
    assert meta["n_tokens"] == store.n_tokens == 11
    assert store.shards[0].dtype == np.float16


def test_slices_sample_reproducibly_and_only_inside_their_range(tmp_path):
    tok, model = tiny_tokenizer(add_bos=True), tiny_model("llama", seed=0)
    build_activation_shards(model, tok, TEXTS, tmp_path, n_tokens=100, context_length=8,
                            batch_size=2, dtype="float32", shard_tokens=5, progress=False)
    store = ActivationStore(tmp_path)
    part = store.split(3, 9)
    a = part.sample(torch.Generator().manual_seed(0), 200)
    b = part.sample(torch.Generator().manual_seed(0), 200)
    assert torch.equal(a, b)
    inside = {tuple(r) for r in part.all().tolist()}
    assert {tuple(r) for r in a.tolist()} <= inside


def test_a_pickled_store_is_its_folder_and_reopens_the_same_rows(tmp_path):
    """A store travels to a worker process as its folder (a few hundred bytes, not its rows)
    and reads the same rows there, memory-mapped or in memory as it was."""
    import pickle

    tok, model = tiny_tokenizer(add_bos=True), tiny_model("llama", seed=0)
    build_activation_shards(model, tok, TEXTS, tmp_path, n_tokens=100, context_length=8,
                            batch_size=2, dtype="float32", shard_tokens=5, progress=False)
    for in_memory in (False, True):
        store = ActivationStore(tmp_path, in_memory=in_memory)
        data = pickle.dumps(store)
        assert len(data) < 1000
        again = pickle.loads(data)
        assert again.directory == store.directory and again.in_memory == in_memory
        np.testing.assert_array_equal(again.rows(np.arange(store.n_tokens)),
                                      store.rows(np.arange(store.n_tokens)))


@pytest.mark.skipif(importlib.util.find_spec("gensim") is None, reason="gensim not installed")
def test_offline_corpus_is_english_prose_from_gensim():
    from ipta.lm.corpus import gensim_texts

    docs = [d for _, d in zip(range(6), gensim_texts())]
    assert len(docs) == 6 and all(len(d.split()) >= 25 for d in docs)
    assert all("[[" not in d and "{{" not in d for d in docs)  # wiki markup removed
    assert sum(d.count(" the ") for d in docs) > 20


def test_a_token_budget_the_offline_corpus_cannot_fill_is_refused_before_any_forward(
        monkeypatch):
    import ipta.lm.corpus as corpus

    monkeypatch.setattr(corpus, "corpus_texts", lambda name: iter(TEXTS))
    tok = tiny_tokenizer(add_bos=True)
    corpus.check_corpus_rows(tok, "gensim", 40, context_length=8, max_windows_per_doc=0)
    from ipta.config import ConfigError  # one line in the CLI, not a traceback

    with pytest.raises(ConfigError, match=r"'n_tokens': the corpus 'gensim' gives only 21 "
                                          r"activation rows .* max_windows_per_doc=1, fewer "
                                          r"than the 40 asked for; lower n_tokens or set "
                                          r"max_windows_per_doc to 0"):
        corpus.check_corpus_rows(tok, "gensim", 40, context_length=8, max_windows_per_doc=1)


def test_the_store_is_keyed_by_every_argument_but_batching_device_and_memory(tmp_path,
                                                                              monkeypatch):
    """Another extraction batch, device or memory layout reads the same entry; another context
    length or token budget builds a new one."""
    from ipta.lm.corpus import cached_activations
    from ipta.lm.models import LazyModel

    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    builds = []

    def store(**changes):
        model = LazyModel("tiny:llama")
        settings = {"n_tokens": 300, "context_length": 32, "max_windows_per_doc": 1, **changes}
        out = cached_activations("tiny:llama", progress=False, loaded=model, **settings)
        builds.append(model.is_loaded)
        return out

    first = store()
    again = store(batch_size=3, device="cpu", in_memory=False)
    np.testing.assert_array_equal(again.rows(np.arange(10)), first.rows(np.arange(10)))
    store(context_length=64)
    store(n_tokens=256)
    assert builds == [True, False, True, True]

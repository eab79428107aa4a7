"""Model loading: clear errors for bad names, local folders load, fingerprints track weights."""

import os

import pytest

from ipta.lm import models
from ipta.lm.models import (EMBEDDED_MODELS, LazyModel, ModelNotFoundError, load_model,
                            model_fingerprint)
from ipta.lm.tiny_models import tiny_model, tiny_tokenizer


def test_the_two_embedded_models_are_declared_with_smollm2_first():
    assert list(EMBEDDED_MODELS) == ["smollm2-135m", "gemma3-270m"]


@pytest.mark.parametrize("bad", ["./no/such/folder", "/no/such/abs/path", "a/b/c"])
def test_missing_local_path_names_itself_and_the_embedded_choices(bad):
    with pytest.raises(ModelNotFoundError) as err:
        load_model(bad)
    assert bad in str(err.value) and "smollm2-135m" in str(err.value)


def test_folder_without_config_is_refused_clearly(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(str(tmp_path))


def test_unreachable_hub_id_raises_a_clear_error(monkeypatch):
    """No hub here (and offline mode forced): a hub id fails with a message naming it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="EleutherAI/pythia-nonexistent"):
        load_model("EleutherAI/pythia-nonexistent")


@pytest.mark.parametrize("arch", ["gpt_neox", "llama"])
def test_saved_local_folder_loads_in_eval_mode_with_identical_weights(tmp_path, arch):
    model = tiny_model(arch)
    model.save_pretrained(tmp_path)
    tiny_tokenizer(add_bos=arch == "llama").save_pretrained(tmp_path)
    loaded, tok = load_model(str(tmp_path), device="cpu")
    assert not loaded.training and tok("cat")["input_ids"]
    for (name, p), q in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert (p == q).all(), name


def test_fingerprint_changes_when_local_weights_are_rewritten(tmp_path):
    tiny_model("llama", seed=0).save_pretrained(tmp_path)
    before = model_fingerprint(str(tmp_path))
    st = os.stat(tmp_path / "model.safetensors")
    os.utime(tmp_path / "model.safetensors", (st.st_atime, st.st_mtime + 10))
    assert model_fingerprint(str(tmp_path)) != before
    assert model_fingerprint("org/name", "abc") == "hub:org/name@abc"


def test_a_lazy_model_loads_on_first_call_and_then_returns_the_same_objects(monkeypatch):
    calls = []
    real = models.load_model
    monkeypatch.setattr(models, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    lazy = LazyModel("tiny:gpt_neox")
    assert not lazy.is_loaded and calls == []
    first = lazy()
    assert lazy() is first and len(calls) == 1


def test_a_model_spread_over_devices_gives_the_same_representations(tmp_path, monkeypatch):
    """A forced device map on the CPU (one decoder layer offloaded to disk, as accelerate does
    for a model larger than its devices) loads, and every layer's word representations equal
    those of the model in one piece, the early-stopping inner layers included."""
    import numpy as np

    from ipta.lm.activations import word_representations
    from ipta.lm.models import load_model

    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    whole = tiny_model("llama", seed=0)
    whole.save_pretrained(tmp_path / "m")
    tiny_tokenizer(add_bos=True).save_pretrained(tmp_path / "m")
    spread = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
              "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    model, tok = load_model(str(tmp_path / "m"), device="cpu", device_map=spread)
    assert model.hf_device_map["model.layers.1"] == "disk"
    words = ["a", "cat", "horses", "Paris", "quickly"]
    for layer in (-1, 0, 1, 2):
        np.testing.assert_array_equal(
            word_representations(model, tok, words, layer=layer, batch_size=2, progress=False),
            word_representations(whole.eval(), tok, words, layer=layer, batch_size=2,
                                 progress=False))


def test_the_plain_array_gguf_reader_reads_what_the_memmap_reader_reads(tmp_path):
    """Every field (vocabulary included) and every tensor of the embedded SmolLM2 GGUF, read
    through :func:`ipta.lm.models.plain_array_gguf_reader` and through gguf's own memmap, agree
    byte for byte; outside the context the reader uses its memmap again."""
    import numpy as np
    from gguf import GGUFReader

    from ipta.lm.models import EMBEDDED_MODELS, plain_array_gguf_reader

    path = EMBEDDED_MODELS["smollm2-135m"].locate(tmp_path)
    with plain_array_gguf_reader():
        plain = GGUFReader(path)
    usual = GGUFReader(path)
    assert type(plain.data) is np.ndarray and isinstance(usual.data, np.memmap)
    assert plain.fields.keys() == usual.fields.keys()
    for name, field in usual.fields.items():
        other = plain.fields[name]
        assert field.types == other.types and field.data == other.data, name
        for a, b in zip(field.parts, other.parts, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert [t.name for t in plain.tensors] == [t.name for t in usual.tensors]
    for a, b in zip(plain.tensors, usual.tensors):
        np.testing.assert_array_equal(a.data, b.data, err_msg=a.name)


def test_a_gguf_file_parsed_once_loads_what_three_parses_load(tmp_path):
    """The embedded SmolLM2 loaded from its GGUF file (config, tokenizer, weights) inside
    :func:`ipta.lm.models.gguf_parsed_once` equals the same load without it, weights bit for
    bit, while the file is parsed once instead of once per call; gguf's reader and name map are
    its own again afterwards."""
    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ipta.lm.models import EMBEDDED_MODELS, gguf_parsed_once

    path = EMBEDDED_MODELS["smollm2-135m"].locate(tmp_path)

    def load():
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch.float32)
        return model, AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)

    usual_model, usual_tokenizer = load()
    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with gguf_parsed_once():
        model, tokenizer = load()
        assert gguf.GGUFReader.cache_info().misses == 1 < gguf.GGUFReader.cache_info().hits
    assert (gguf.GGUFReader, gguf.get_tensor_name_map) == (reader, name_map)
    assert model.config.to_dict() == usual_model.config.to_dict()
    assert tokenizer.get_vocab() == usual_tokenizer.get_vocab()
    usual = usual_model.state_dict()
    assert model.state_dict().keys() == usual.keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, usual[name]), name


def test_conversion_without_the_random_initialisation_writes_the_same_folder(tmp_path,
                                                                             monkeypatch):
    """The fresh model that conversion fills is built without its random initialisation (every
    weight is overwritten); the folder written is byte for byte the one written with that
    initialisation, tied output embedding included."""
    import contextlib
    import hashlib
    import importlib

    from ipta.lm.models import EMBEDDED_MODELS, _convert_gguf

    path = EMBEDDED_MODELS["smollm2-135m"].locate(tmp_path)
    _convert_gguf(path, tmp_path / "skipped")
    # the module itself, from sys.modules: transformers' lazy top-level module need not carry
    # it as an attribute (it does not once an earlier test has loaded a model)
    initialization = importlib.import_module("transformers.initialization")
    monkeypatch.setattr(initialization, "no_init_weights", contextlib.nullcontext)
    _convert_gguf(path, tmp_path / "initialised")

    def digests(folder):
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}

    assert digests(tmp_path / "skipped") == digests(tmp_path / "initialised")

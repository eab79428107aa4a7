"""Word representations equal a plain transformers forward pass, whatever the batching."""

import numpy as np
import pytest
import torch

from ipta.lm.activations import (apply_template, cached_word_representations, hidden_states,
                              pad_batch, word_representations, words_checksum)
from ipta.lm.tiny_models import tiny_model, tiny_tokenizer

WORDS = ["a", "cat", "horses", "running", "Paris", "é", "on", "quickly", "to", "big"]


def direct(model, tokenizer, word, layer, position="last"):
    """One word alone, no padding, through the full causal-LM forward."""
    ids = tokenizer(word, return_tensors="pt")
    with torch.no_grad():
        out = model(**ids, output_hidden_states=True)
    states = out.hidden_states[layer][0]
    return (states[-1] if position == "last" else states.mean(0)).numpy()


@pytest.mark.parametrize("arch,add_bos", [("gpt_neox", False), ("llama", True)])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("layer", [-1, 0, 1])
def test_batched_extraction_equals_direct_forward_per_word(arch, add_bos, side, layer):
    """Batched, padded extraction gives each word's unpadded hidden state at its last token."""
    model, tok = tiny_model(arch), tiny_tokenizer(add_bos=add_bos, padding_side=side)
    reps = word_representations(model, tok, WORDS, layer=layer, batch_size=4, progress=False)
    expected = np.stack([direct(model, tok, w, layer) for w in WORDS])
    np.testing.assert_allclose(reps, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("side", ["left", "right"])
def test_mean_position_averages_the_word_tokens_only(side):
    """position='mean' averages over real tokens, not the padding."""
    model, tok = tiny_model("llama"), tiny_tokenizer(add_bos=True, padding_side=side)
    reps = word_representations(model, tok, WORDS, position="mean", batch_size=3, progress=False)
    expected = np.stack([direct(model, tok, w, -1, "mean") for w in WORDS])
    np.testing.assert_allclose(reps, expected, atol=2e-5, rtol=1e-4)


def test_eos_pads_when_the_tokenizer_has_no_pad_token():
    """Without a pad token, EOS pads (the authors' choice) and results are unchanged."""
    model = tiny_model("gpt_neox")
    tok = tiny_tokenizer(add_bos=False, pad=False)
    assert tok.pad_token_id is None
    reps = word_representations(model, tok, WORDS, batch_size=5, progress=False)
    expected = np.stack([direct(model, tok, w, -1) for w in WORDS])
    np.testing.assert_allclose(reps, expected, atol=2e-5, rtol=1e-4)


def test_hidden_states_equal_the_full_forward_with_output_hidden_states():
    """hidden_states() returns output.hidden_states[layer] of the causal LM on the same batch."""
    model, tok = tiny_model("llama"), tiny_tokenizer(add_bos=True)
    ids, mask, _ = pad_batch(tok(WORDS[:4])["input_ids"], 0, "right")
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    for layer in (-1, -3, 2):
        torch.testing.assert_close(hidden_states(model, ids, mask, layer), full[layer])


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_an_early_layer_is_read_without_running_the_layers_after_it(arch):
    """Every hidden_states index equals the full forward's, and for all but the last the
    decoder layers past it never run."""
    from ipta.lm.activations import _decoder_layers

    model, tok = tiny_model(arch), tiny_tokenizer(add_bos=arch == "llama")
    ids, mask, pos = pad_batch(tok(WORDS[:4])["input_ids"], 0, "right")
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                     output_hidden_states=True).hidden_states
    layers = _decoder_layers(model.base_model)
    assert layers is not None and len(layers) == len(full) - 1
    for index in range(len(full)):
        ran = []
        hooks = [m.register_forward_hook(lambda *_a, i=i: ran.append(i))
                 for i, m in enumerate(layers)]
        try:
            got = hidden_states(model, ids, mask, index, pos)
        finally:
            for h in hooks:
                h.remove()
        torch.testing.assert_close(got, full[index])
        assert ran == list(range(min(index, len(layers)) if index < len(full) - 1
                                 else len(layers))), (index, ran)


def test_out_of_range_layer_names_the_valid_range():
    model, tok = tiny_model("llama", layers=2), tiny_tokenizer(add_bos=True)
    with pytest.raises(ValueError, match="-3..2"):
        word_representations(model, tok, ["cat"], layer=3, progress=False)


def test_template_puts_the_word_in_place_and_requires_a_placeholder():
    assert apply_template(["cat"], "the word {word}") == ["the word cat"]
    assert apply_template(["cat"], None) == ["cat"]
    with pytest.raises(ValueError, match="placeholder"):
        apply_template(["cat"], "no slot")


def test_cache_returns_the_same_array_without_recomputing(tmp_path, monkeypatch):
    """A second call with the same key is served from disk; a new word list is a new key."""
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    loaded = (tiny_model("llama"), tiny_tokenizer(add_bos=True))
    first = cached_word_representations("tiny-test", WORDS, loaded=loaded, progress=False)
    second = cached_word_representations("tiny-test", WORDS, loaded=None, progress=False)
    np.testing.assert_array_equal(first, second)
    assert words_checksum(WORDS) != words_checksum(WORDS[::-1])


def test_every_argument_that_changes_a_state_is_keyed_and_batching_and_device_are_not(
        tmp_path, monkeypatch):
    """The key holds every argument but device, batch_size, progress and loaded: another
    batch or device reads the entry, another layer or position builds a new one."""
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path))
    model = (tiny_model("llama"), tiny_tokenizer(add_bos=True))
    loads = []

    def loader():
        loads.append(1)
        return model

    def reps(**changes):
        return cached_word_representations("tiny-test", WORDS, loaded=loader, progress=False,
                                           **changes)

    first = reps()
    np.testing.assert_array_equal(reps(batch_size=3, device="cpu"), first)
    assert len(loads) == 1
    reps(position="mean")
    reps(layer=0)
    reps(template="a {word}")
    assert len(loads) == 4

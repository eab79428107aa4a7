"""Specification of ipta.lm.tiny_models: offline stand-ins for Pythia and Llama, whose weights
are a function of their seed alone and whose tokenizer reads one character per token."""

import pytest
import torch

from ipta.lm.tiny_models import tiny_model, tiny_tokenizer


def test_the_tokenizer_gives_one_token_per_character_and_a_bos_only_when_asked():
    plain = tiny_tokenizer(add_bos=False)
    ids = plain("cat")["input_ids"]
    assert plain.convert_ids_to_tokens(ids) == ["c", "a", "t"]
    llama_like = tiny_tokenizer(add_bos=True)
    assert llama_like("cat")["input_ids"] == [llama_like.bos_token_id, *ids]


def test_without_a_pad_token_the_tokenizer_has_none_like_pythias():
    assert tiny_tokenizer(add_bos=False, pad=False).pad_token is None
    assert tiny_tokenizer(add_bos=False).pad_token == "<pad>"


def test_a_character_outside_the_alphabet_is_the_unknown_token():
    tok = tiny_tokenizer(add_bos=False)
    assert tok.convert_ids_to_tokens(tok("a☃")["input_ids"]) == ["a", "<unk>"]


@pytest.mark.parametrize("arch", ["gpt_neox", "llama"])
def test_the_weights_are_a_function_of_the_seed_alone(arch):
    a, b, c = tiny_model(arch, seed=0), tiny_model(arch, seed=0), tiny_model(arch, seed=1)
    assert not a.training
    for (name, p), q, r in zip(a.state_dict().items(), b.state_dict().values(),
                               c.state_dict().values()):
        assert torch.equal(p, q), name
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_building_a_model_leaves_the_callers_global_generator_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_model("llama", seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_the_model_reads_the_tokenizers_ids_and_returns_one_logit_row_per_token():
    tok, model = tiny_tokenizer(add_bos=True), tiny_model("llama", hidden_size=16, layers=1)
    batch = tok(["cat", "horses"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch["input_ids"].shape[1], model.config.vocab_size)
    assert len(tok) <= model.config.vocab_size


def test_an_unknown_architecture_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"'gpt2' is not allowed; choose 'gpt_neox' or 'llama'"):
        tiny_model("gpt2")

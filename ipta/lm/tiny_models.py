"""Tiny randomly initialised causal LMs and a character tokenizer, built offline.

No Pythia or Llama weights can be downloaded here, so tests (and the smoke profile) exercise the
same transformers code paths (GPT-NeoX for Pythia, Llama for Llama/SmolLM2) on models of a few
thousand parameters whose weights come from a seeded generator.
"""

from __future__ import annotations

import string
from typing import Any, Literal

TinyArch = Literal["gpt_neox", "llama"]

_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
_CHARS = string.ascii_letters + string.digits + " -'.,éèàäöüñç"


def tiny_tokenizer(*, add_bos: bool, pad: bool = True, padding_side: str = "right") -> Any:
    """A character-level fast tokenizer: words split into one token per character.

    ``add_bos`` mimics Llama-style tokenizers (a BOS in front of every input; Pythia's has
    none); ``pad=False`` leaves the pad token unset, as in Pythia and Llama-2.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(_SPECIALS + tuple(dict.fromkeys(_CHARS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
        pad_token="<pad>" if pad else None, padding_side=padding_side)


def tiny_model(arch: TinyArch = "llama", *, seed: int = 0, vocab_size: int = 96,
               hidden_size: int = 32, layers: int = 2) -> Any:
    """A randomly initialised causal LM of ``arch`` in eval mode (weights drawn from ``seed``)."""
    import torch
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, LlamaConfig

    common = dict(vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=layers,
                  num_attention_heads=4, intermediate_size=2 * hidden_size,
                  max_position_embeddings=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch == "gpt_neox":
        config = GPTNeoXConfig(**common)
    elif arch == "llama":
        config = LlamaConfig(num_key_value_heads=2, **common)
    else:
        raise ValueError(f"tiny architecture {arch!r} is not allowed; choose 'gpt_neox' or 'llama'")
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(seed)  # local to the fork: the caller's global RNG is left untouched
        model = AutoModelForCausalLM.from_config(config)
    return model.eval()

"""Word representations f(x) from a causal LM's hidden states (paper section 6, appendix J).

The theory's f(x) is the vector that meets the unembedding: the last entry of
``output.hidden_states`` (after the final norm), at the last token of the input. The authors
feed each word alone, padded with EOS; :func:`word_representations` does the same by default,
batched, and gives the same numbers as a plain transformers forward pass of each word on its own
(position ids follow the attention mask, so left padding does not shift the rotary positions).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ipta.cache import call_spec, get_or_compute

Position = Literal["last", "mean"]
POSITIONS = ("last", "mean")
"""``last``: the last non-pad token (the word's last sub-token); ``mean``: mean over its tokens."""


def _n_hidden_states(model: Any) -> int:
    return model.config.get_text_config().num_hidden_layers + 1


def check_layer(model: Any, layer: int) -> int:
    """``layer`` as a non-negative index into ``hidden_states``; a clear error if out of range."""
    n = _n_hidden_states(model)
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} is out of range for a model with {n - 1} layers: "
                         f"hidden_states has {n} entries, so use -{n}..{n - 1} "
                         "(0 = embeddings, -1 = after the final norm)")
    return layer % n


class _Reached(Exception):
    """Raised by a hook to end a forward pass once the asked-for hidden state exists."""

    def __init__(self, states: Any):
        super().__init__()
        self.states = states


def _decoder_layers(body: Any) -> Any:
    """The base model's list of decoder layers (``layers`` for Llama, Gemma and GPT-NeoX, ``h``
    for GPT-2), found as its module list of ``num_hidden_layers`` blocks; None if not found."""
    import torch

    n = body.config.get_text_config().num_hidden_layers
    for name in ("layers", "h"):
        found = getattr(body, name, None)
        if isinstance(found, torch.nn.ModuleList) and len(found) == n:
            return found
    lists = [m for m in body.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == n]
    return lists[0] if len(lists) == 1 else None


def hidden_states(model: Any, input_ids_BL: Any, attention_mask_BL: Any, layer: int = -1,
                  position_ids_BL: Any | None = None) -> Any:
    """``output.hidden_states[layer]`` of a forward pass, shape [B, L, D].

    Runs the model's base (no unembedding: the logits are never needed here, and for a
    262k-word vocabulary they would cost more than the whole transformer), which returns the same
    hidden states as the full causal-LM forward with ``output_hidden_states=True``. For any layer
    but the last, the pass also stops where that state exists: ``hidden_states[i]`` is the input
    of decoder layer ``i``, read by a hook there, and the layers after it never run.
    """
    import torch

    index = check_layer(model, layer)
    body = getattr(model, "base_model", model)
    layers = _decoder_layers(body) if index < _n_hidden_states(model) - 1 else None
    handle = None
    if layers is not None:
        def stop(_module: Any, args: tuple, kwargs: dict) -> None:
            states = args[0] if args else kwargs["hidden_states"]
            raise _Reached(states)

        handle = layers[index].register_forward_pre_hook(stop, with_kwargs=True)
    try:
        with torch.inference_mode():
            out = body(input_ids=input_ids_BL, attention_mask=attention_mask_BL,
                       position_ids=position_ids_BL, output_hidden_states=True, use_cache=False)
    except _Reached as reached:
        return reached.states
    finally:
        if handle is not None:
            handle.remove()
    return out.hidden_states[index]


def pad_id(tokenizer: Any) -> int:
    """The pad token id, falling back to EOS as the authors do when a tokenizer has none."""
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has neither a pad nor an EOS token to pad with")
    return tokenizer.eos_token_id


def apply_template(words: Sequence[str], template: str | None) -> list[str]:
    """Each word alone (``template=None``, the paper's choice) or put into ``template``'s ``{word}``."""
    if template is None:
        return list(words)
    if "{word}" not in template:
        raise ValueError(f"template {template!r} must contain the placeholder '{{word}}'")
    return [template.replace("{word}", w) for w in words]


def pad_batch(token_lists: Sequence[Sequence[int]], pad: int, side: str) -> tuple[Any, Any, Any]:
    """Pad token lists to one length: ``(input_ids_BL, attention_mask_BL, position_ids_BL)``."""
    import torch

    if side not in ("left", "right"):
        raise ValueError(f"padding side {side!r} is not allowed; choose 'left' or 'right'")
    length = max(len(t) for t in token_lists)
    ids_BL = torch.full((len(token_lists), length), pad, dtype=torch.long)
    mask_BL = torch.zeros((len(token_lists), length), dtype=torch.long)
    for b, tokens in enumerate(token_lists):
        span = slice(length - len(tokens), length) if side == "left" else slice(0, len(tokens))
        ids_BL[b, span] = torch.tensor(list(tokens), dtype=torch.long)
        mask_BL[b, span] = 1
    # Positions count real tokens only, so a left-padded word sees the positions it would alone.
    position_ids_BL = (mask_BL.cumsum(1) - 1).clamp(min=0)
    return ids_BL, mask_BL, position_ids_BL


def _pool(states_BLD: Any, mask_BL: Any, position: str) -> Any:
    import torch

    if position == "last":
        # The last real token sits at the highest index whose mask is 1, whatever the padding side.
        index_BL = torch.arange(mask_BL.shape[1], device=mask_BL.device) * mask_BL
        idx_B = index_BL.argmax(1)
        return states_BLD[torch.arange(len(idx_B), device=mask_BL.device), idx_B]
    if position == "mean":
        m_BL1 = mask_BL.unsqueeze(-1).to(states_BLD.dtype)
        return (states_BLD * m_BL1).sum(1) / m_BL1.sum(1)
    raise ValueError(f"position {position!r} is not allowed; choose one of {', '.join(POSITIONS)}")


def word_representations(model: Any, tokenizer: Any, words: Sequence[str], *, layer: int = -1,
                         position: str = "last", template: str | None = None,
                         batch_size: int = 64, padding_side: str | None = None,
                         progress: bool = True) -> np.ndarray:
    """Hidden state of each word (or templated prompt) at ``layer`` and ``position``: [N, D] fp32.

    Words are tokenized with the tokenizer's own special-token default (BOS for Llama/Gemma,
    none for Pythia), sorted by length so batches carry little padding, padded on
    ``padding_side`` (default: the tokenizer's) with the pad or else the EOS token.
    """
    from ipta.progress import bar

    check_layer(model, layer)
    texts = apply_template(words, template)
    if not texts:
        return np.zeros((0, model.config.get_text_config().hidden_size), dtype=np.float32)
    tokens = tokenizer(texts)["input_ids"]
    if any(len(t) == 0 for t in tokens):
        empty = [w for w, t in zip(words, tokens) if len(t) == 0]
        raise ValueError(f"{len(empty)} word(s) tokenize to nothing, e.g. {empty[:3]!r}")
    side = padding_side or getattr(tokenizer, "padding_side", "right")
    order = np.argsort([len(t) for t in tokens], kind="stable")
    device = next(model.parameters()).device
    out_ND = np.zeros((len(texts), model.config.get_text_config().hidden_size), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    for s in bar(starts, desc="hidden states", disable=not progress, leave=False):
        rows = order[s:s + batch_size]
        ids_BL, mask_BL, pos_BL = pad_batch([tokens[i] for i in rows], pad_id(tokenizer), side)
        states_BLD = hidden_states(model, ids_BL.to(device), mask_BL.to(device), layer,
                                   pos_BL.to(device))
        out_ND[rows] = _pool(states_BLD, mask_BL.to(device), position).float().cpu().numpy()
    return out_ND


def words_checksum(words: Sequence[str]) -> str:
    """SHA-256 of the word list (order matters), for cache keys."""
    return hashlib.sha256(json.dumps(list(words), ensure_ascii=False).encode()).hexdigest()


def cached_word_representations(model_name: str, words: Sequence[str], *,
                                revision: str | None = None, layer: int = -1,
                                position: str = "last", template: str | None = None,
                                device: str = "auto", dtype: str = "auto",
                                batch_size: int = 64, progress: bool = True,
                                loaded: Any = None) -> np.ndarray:
    """:func:`word_representations` through the ipta cache; the model loads only on a miss.

    Keyed by every argument (:func:`ipta.cache.call_spec`), the model by its fingerprint and the
    words by their checksum, except ``device`` and ``batch_size``, which do not change a word's
    state (padding is masked, which the tests check against unbatched forward passes). ``loaded`` passes an
    already loaded ``(model, tokenizer)`` of that name, or a function returning one (e.g. an
    :class:`ipta.lm.models.LazyModel`), called only on a miss.
    """
    from ipta.lm.models import load_model, model_fingerprint

    spec = call_spec(cached_word_representations, locals(),
                     ignore=("device", "batch_size", "progress", "loaded"),
                     replace={"model_name": model_fingerprint(model_name, revision),
                              "words": words_checksum(words)})

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if callable(loaded):
            model, tokenizer = loaded()
        elif loaded is not None:
            model, tokenizer = loaded
        else:
            model, tokenizer = load_model(model_name, revision=revision, device=device,
                                          dtype=dtype)
        reps_ND = word_representations(model, tokenizer, words, layer=layer, position=position,
                                       template=template, batch_size=batch_size,
                                       progress=progress)
        return {"reps_ND": reps_ND}, spec

    arrays, _ = get_or_compute("word_representations", spec, compute,
                               code=("ipta.lm.activations",))
    return arrays["reps_ND"]


def unembedding_covariance(model: Any) -> np.ndarray:
    """The covariance ``Cov(gamma)`` of the model's unembedding vectors (the rows of its output
    embedding, one per token): the matrix of the causal inner product of Park, Choe and Veitch
    (2024), D x D in float64."""
    import torch

    with torch.no_grad():
        gamma_VD = model.get_output_embeddings().weight.detach().double().cpu().numpy()
    centred = gamma_VD - gamma_VD.mean(0)
    return centred.T @ centred / len(centred)


def cached_unembedding_covariance(model_name: str, *, revision: str | None = None,
                                  dtype: str = "auto", device: str = "auto",
                                  loaded: Any = None) -> np.ndarray:
    """:func:`unembedding_covariance` through the ipta cache (keyed by every argument but
    ``device`` and ``loaded``, the model by its fingerprint); the model loads only on a miss."""
    from ipta.lm.models import load_model, model_fingerprint

    spec = call_spec(cached_unembedding_covariance, locals(), ignore=("device", "loaded"),
                     replace={"model_name": model_fingerprint(model_name, revision)})

    def compute() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        model = loaded()[0] if callable(loaded) else (
            loaded[0] if loaded is not None else
            load_model(model_name, revision=revision, device=device, dtype=dtype)[0])
        return {"cov_DD": unembedding_covariance(model)}, {}

    arrays, _ = get_or_compute("unembedding_covariance", spec, compute,
                               code=("ipta.lm.activations",))
    return arrays["cov_DD"]

"""Word-representation extraction: ours against a plain transformers loop, side by side.

Usage: python benchmarks/bench_extraction.py [MODEL ...] [--words N] [--batch-size B]
                                             [--layers -1,6] [--repeats 3] [--conversion]

For each model and layer, both paths take the same words in batches of the same size:

- plain: ``model(**tokenizer(batch, padding=True), output_hidden_states=True)`` in the words'
  order, the state at each word's last real token;
- ours: :func:`ipta.lm.activations.word_representations` (the base model only, no LM head;
  words sorted by length so batches carry little padding; for an inner layer the pass stops
  there and the later layers never run).

The script asserts that both give the same numbers (to float32 round-off of different padding)
and prints words per second for each, their ratio (ours / plain, median of the repeats, the two
paths interleaved) and the largest difference. The goal is a ratio of at least 1.2.

Each line also gives the forward pass's achieved FLOP/s (2 x the body's parameters outside the
embedding, per real token) against a plain matmul of a layer's shape timed in the same run: at
the last layer every layer must run, so once the body works near the matmul peak the ratio is
bounded by what the plain loop spends beyond the body (the LM head, padding), which the line
prints as the ceiling.

``--conversion`` instead times each embedded model's first use, its conversion from the GGUF
file (:func:`ipta.lm.models.embedded_model_dir`, in a fresh temporary cache), with the file
parsed once per call of transformers and parsed once in all
(:func:`ipta.lm.models.gguf_parsed_once`), alternating over ``--repeats`` rounds, and prints
the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from ipta.lm.activations import word_representations
from ipta.lm.concepts import load_concept_set
from ipta.lm.models import load_model


def plain_loop(model, tokenizer, words, layer, batch_size):
    """The textbook extraction: full causal-LM forward with every hidden state, right padding."""
    tokenizer.padding_side = "right"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = []
    for start in range(0, len(words), batch_size):
        batch = tokenizer(words[start:start + batch_size], padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = model(**batch, output_hidden_states=True)
        last = batch["attention_mask"].sum(1) - 1
        rows.append(out.hidden_states[layer][torch.arange(len(last)), last].float().numpy())
    return np.concatenate(rows)


def conversions(models: list[str], repeats: int) -> None:
    """First use of each embedded model, the GGUF file parsed once per call of transformers
    (as without :func:`ipta.lm.models.gguf_parsed_once`) and parsed once in all."""
    import contextlib
    import os
    import shutil
    import tempfile

    import ipta.lm.models as lm_models

    once = lm_models.gguf_parsed_once
    for name in models:
        times: dict[str, list[float]] = {"per call": [], "once": []}
        for _ in range(repeats):
            for side, seconds in times.items():
                root = tempfile.mkdtemp(prefix="ipta-bench-conversion-")
                os.environ["IPTA_CACHE_DIR"] = root
                lm_models.gguf_parsed_once = once if side == "once" else contextlib.nullcontext
                start = time.perf_counter()
                lm_models.embedded_model_dir(name)
                seconds.append(time.perf_counter() - start)
                shutil.rmtree(root, ignore_errors=True)
        lm_models.gguf_parsed_once = once
        a, b = (statistics.median(v) for v in times.values())
        print(f"{name} conversion: parsed per call {a:.1f} s, parsed once {b:.1f} s "
              f"(medians of {repeats}), ratio {a / b:.2f}x")


def body_flops(model) -> int:
    """2 x the parameters a token passes through in the body (all but the embedding table)."""
    body = getattr(model, "base_model", model)
    embedding = body.get_input_embeddings().weight.numel()
    return 2 * (sum(p.numel() for p in body.parameters()) - embedding)


def matmul_peak(model, rows: int, repeats: int = 20) -> float:
    """FLOP/s of a plain matmul of the model's MLP shape (rows x hidden x intermediate)."""
    config = model.config.get_text_config()
    a = torch.randn(rows, config.hidden_size)
    b = torch.randn(config.hidden_size, config.intermediate_size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * rows * config.hidden_size * config.intermediate_size * repeats / (
        time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--words", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", default="-1,6")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conversion", action="store_true",
                        help="time the embedded models' first conversion instead")
    args = parser.parse_args()
    if args.conversion:
        conversions(args.models, args.repeats)
        return
    concepts = load_concept_set("embedded")
    words = list(dict.fromkeys(w for n in concepts.names for p in concepts.pairs[n] for w in p))
    words = words[:args.words]
    print(f"{len(words)} words, batch {args.batch_size}, {torch.get_num_threads()} threads")
    for name in args.models:
        model, tokenizer = load_model(name)
        tokens = sum(len(t) for t in tokenizer(words)["input_ids"])  # real tokens, BOS included
        for layer in (int(x) for x in args.layers.split(",")):
            ours_s, plain_s = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                ours = word_representations(model, tokenizer, words, layer=layer,
                                            batch_size=args.batch_size, progress=False)
                ours_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                plain = plain_loop(model, tokenizer, words, layer, args.batch_size)
                plain_s.append(time.perf_counter() - start)
            np.testing.assert_allclose(ours, plain, atol=1e-3, rtol=1e-3)
            o, p = statistics.median(ours_s), statistics.median(plain_s)
            print(f"{name} layer {layer:3d}: ours {len(words) / o:7.1f} words/s, plain "
                  f"{len(words) / p:7.1f} words/s, ratio {p / o:4.2f}x, max |difference| "
                  f"{np.abs(ours - plain).max():.1e}")
            if layer == -1:
                achieved = body_flops(model) * tokens / o
                rows = round(tokens / -(-len(words) // args.batch_size))
                peak = matmul_peak(model, rows)
                print(f"  last layer: the body runs at {achieved / 1e9:.0f} GFLOP/s, "
                      f"{achieved / peak:.0%} of a plain matmul of its MLP's shape at a batch's "
                      f"{rows} tokens ({peak / 1e9:.0f} GFLOP/s); a body at that peak would "
                      f"make the ratio {p / o * peak / achieved:.2f}x (the ceiling here)")


if __name__ == "__main__":
    main()

"""Word-representation extraction: ours against a plain transformers loop, side by side.

Usage: python benchmarks/bench_extraction.py [MODEL ...] [--words N] [--batch-size B]
                                             [--layers -1,6] [--repeats 3]

For each model and layer, both paths take the same words in batches of the same size:

- plain: ``model(**tokenizer(batch, padding=True), output_hidden_states=True)`` in the words'
  order, the state at each word's last real token;
- ours: :func:`ipta.lm.activations.word_representations` (the base model only, no LM head;
  words sorted by length so batches carry little padding; for an inner layer the pass stops
  there and the later layers never run).

The script asserts that both give the same numbers (to float32 round-off of different padding)
and prints words per second for each, their ratio (ours / plain, median of the repeats, the two
paths interleaved) and the largest difference. The goal is a ratio of at least 1.2.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--words", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", default="-1,6")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    concepts = load_concept_set("embedded")
    words = list(dict.fromkeys(w for n in concepts.names for p in concepts.pairs[n] for w in p))
    words = words[:args.words]
    print(f"{len(words)} words, batch {args.batch_size}, {torch.get_num_threads()} threads")
    for name in args.models:
        model, tokenizer = load_model(name)
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


if __name__ == "__main__":
    main()

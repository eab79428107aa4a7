"""Words per second of word-representation extraction (uncached), per model and batch size.

Usage: python benchmarks/bench_extraction.py [MODEL ...] [--words N] [--batch-sizes 16,64]
Prints one line per model and batch size; the model load time is printed separately.
"""

from __future__ import annotations

import argparse
import time

from ipta.lm.activations import word_representations
from ipta.lm.concepts import load_concept_set
from ipta.lm.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--words", type=int, default=512)
    parser.add_argument("--batch-sizes", default="16,64")
    args = parser.parse_args()
    concepts = load_concept_set("embedded")
    words = list(dict.fromkeys(w for n in concepts.names for p in concepts.pairs[n] for w in p))
    words = words[:args.words]
    for name in args.models:
        start = time.perf_counter()
        model, tokenizer = load_model(name)
        print(f"{name}: load {time.perf_counter() - start:.1f} s")
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            start = time.perf_counter()
            word_representations(model, tokenizer, words, batch_size=bs, progress=False)
            rate = len(words) / (time.perf_counter() - start)
            print(f"{name}: batch {bs:4d}: {rate:8.1f} words/s over {len(words)} words")


if __name__ == "__main__":
    main()

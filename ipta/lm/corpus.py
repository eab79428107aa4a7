"""Text to train SAEs on, and the model activations over it as memory-mapped shards (app. H.3).

The paper caches Pythia-70M's last-layer activations over The Pile. Offline we read real
English prose shipped inside an installed dependency: gensim's wheel carries test data with a
shortened English Wikipedia dump (about 90 full articles after dropping redirects and stubs)
and the Lee news corpus (about 300 short Australian news stories). The text is read at run time
and never stored in the repository. Online, any Hugging Face dataset can be streamed by name
(``corpus="hf:NAME"``; a Pile-like corpus for the ``paper`` profile).

Documents are tokenized, cut into windows of ``context_length`` tokens (each window starts
with the tokenizer's own prefix, e.g. BOS, as a fresh input would), run through the model in
batches, and the hidden state at ``layer`` (default -1: after the final norm) of every real
token is kept. BOS/prefix and padding positions are left out. Rows go to ``shard_XXXXX.npy``
files (readable with ``np.load(mmap_mode="r")``) plus ``meta.json``, through the ipta cache.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import (call_spec, distributed_world, get_or_build_dir,
                        get_or_build_dir_collective)

GENSIM_FILES = ("lee_background.cor",
                "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
DTYPES = ("float16", "float32")


# ---------------------------------------------------------------------------------- text
def gensim_data_dir() -> Path:
    """gensim's bundled test-data folder (located without importing gensim)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the offline corpus needs gensim: pip install gensim==4.4.0")
    return Path(spec.origin).parent / "test" / "test_data"


def _wiki_articles(path: Path, min_words: int) -> Iterator[str]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    with bz2.open(path) as fh:
        for _title, text, _pid in extract_pages(fh):
            # filter_wiki strips links and templates; bold/italic quote marks remain.
            clean = re.sub(r"'{2,}", "", filter_wiki(text))
            clean = re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", clean)).strip()
            if len(clean.split()) >= min_words:
                yield clean


def gensim_texts(min_words: int = 50) -> Iterator[str]:
    """Lee news stories and Wikipedia articles, alternating, in a fixed order."""
    root = gensim_data_dir()
    news = (line.strip() for line in (root / GENSIM_FILES[0]).read_text().splitlines())
    news = (t for t in news if len(t.split()) >= min_words // 2)
    wiki = _wiki_articles(root / GENSIM_FILES[1], min_words)
    for pair in itertools.zip_longest(wiki, news):
        yield from (t for t in pair if t is not None)


def hf_texts(name: str, split: str = "train", text_field: str = "text") -> Iterator[str]:
    """Stream the ``text_field`` of a Hugging Face dataset (``name`` may be 'repo:config')."""
    from datasets import load_dataset  # optional dependency, only for online corpora

    repo, _, config = name.partition(":")
    for example in load_dataset(repo, config or None, split=split, streaming=True):
        yield example[text_field]


def corpus_texts(corpus: str) -> Iterator[str]:
    """``"gensim"`` (offline default) or ``"hf:NAME[:CONFIG]"`` (streamed)."""
    if corpus == "gensim":
        return gensim_texts()
    if corpus.startswith("hf:"):
        return hf_texts(corpus[3:])
    raise ValueError(f"corpus {corpus!r} is not known; use 'gensim' or 'hf:DATASET[:CONFIG]'")


def corpus_fingerprint(corpus: str) -> str:
    """What the cache key needs to know about the text: file checksums, or the dataset name."""
    if corpus != "gensim":
        return corpus
    h = hashlib.sha256()
    for name in GENSIM_FILES:
        h.update((gensim_data_dir() / name).read_bytes())
    return "gensim:" + h.hexdigest()[:16]


# ------------------------------------------------------------------------------ tokens
def token_windows(tokenizer: Any, texts: Iterable[str], context_length: int,
                  max_windows_per_doc: int = 0) -> Iterator[list[int]]:
    """Token windows of at most ``context_length``, each starting with the tokenizer's prefix.

    ``max_windows_per_doc`` > 0 keeps only the first windows of each document, so a small token
    budget still spans many documents.
    """
    prefix = token_prefix(tokenizer)
    body = context_length - len(prefix)
    if body < 1:
        raise ValueError(f"context_length {context_length} leaves no room after the prefix")
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        starts = range(0, len(ids), body)
        if max_windows_per_doc > 0:
            starts = starts[:max_windows_per_doc]
        for s in starts:
            yield list(prefix) + ids[s:s + body]


def token_prefix(tokenizer: Any) -> list[int]:
    """The special tokens the tokenizer puts in front of a text (``[BOS]`` for Llama, none for
    Pythia); a suffix such as an EOS is not part of it."""
    special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    for i in range(len(special) - len(plain) + 1):
        if special[i:i + len(plain)] == plain:
            return list(special[:i])
    return []


def check_corpus_rows(tokenizer: Any, corpus: str, n_tokens: int, context_length: int,
                      max_windows_per_doc: int) -> None:
    """Refuse, before any forward pass, an ``n_tokens`` that the offline corpus cannot give.

    Counts the activation rows the windows would yield (tokenising only, seconds for the
    ``gensim`` corpus); streamed corpora are unbounded and not counted."""
    if corpus != "gensim":
        return
    skip, rows = len(token_prefix(tokenizer)), 0
    for window in token_windows(tokenizer, corpus_texts(corpus), context_length,
                                max_windows_per_doc):
        rows += len(window) - skip
        if rows >= n_tokens:
            return
    from ipta.config import ConfigError

    raise ConfigError(
        f"parameter 'n_tokens': the corpus {corpus!r} gives only {rows} activation rows with "
        f"context_length={context_length} and max_windows_per_doc={max_windows_per_doc}, "
        f"fewer than the {n_tokens} asked for; lower n_tokens"
        + (" or set max_windows_per_doc to 0 (every window)" if max_windows_per_doc else ""))


# ------------------------------------------------------------------------- activations
def build_activation_shards(model: Any, tokenizer: Any, texts: Iterable[str], out_dir: Path, *,
                            n_tokens: int, layer: int = -1, context_length: int = 128,
                            batch_size: int = 16, dtype: str = "float16",
                            shard_tokens: int = 1 << 16, max_windows_per_doc: int = 0,
                            progress: bool = True, rank: int = 0,
                            world_size: int = 1) -> dict[str, Any]:
    """Write up to ``n_tokens`` activation rows as ``shard_*.npy`` + ``meta.json`` into ``out_dir``.

    Keeps every real token's hidden state at ``layer``; BOS/prefix and padding are skipped.
    Batch ``i`` of windows is written as its own part file; the parts are then joined, in batch
    order, into shards of ``shard_tokens`` rows. With ``world_size`` > 1 (inside
    ``torch.distributed``, e.g. under torchrun) every rank calls this with the same arguments and
    the same ``out_dir``: rank ``r`` computes the batches ``i`` with ``i % world_size == r`` (how
    many rows each batch gives is known from its windows before any forward pass), and after a
    barrier rank 0 joins the parts, so the store equals the one a single process writes.
    """
    import torch

    from ipta.lm.activations import hidden_states, pad_batch, pad_id
    from ipta.progress import bar

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not allowed; choose one of {', '.join(DTYPES)}")
    device = next(model.parameters()).device
    skip = len(token_prefix(tokenizer))
    windows = token_windows(tokenizer, texts, context_length, max_windows_per_doc)
    parts = out_dir / "_parts"
    parts.mkdir(parents=True, exist_ok=True)
    pbar = bar(total=n_tokens, desc="activations", unit="tok", disable=not progress, leave=False)
    planned, n_batches = 0, 0
    while planned < n_tokens:
        batch = list(itertools.islice(windows, batch_size))
        if not batch:
            break
        rows_here = min(sum(len(w) - skip for w in batch), n_tokens - planned)
        if n_batches % world_size == rank:
            ids_BL, mask_BL, pos_BL = pad_batch(batch, pad_id(tokenizer), "right")
            states_BLD = hidden_states(model, ids_BL.to(device), mask_BL.to(device), layer,
                                       pos_BL.to(device))
            keep_BL = mask_BL.bool() & (torch.arange(ids_BL.shape[1]) >= skip)
            rows = states_BLD[keep_BL.to(device)].float().cpu().numpy()[:rows_here]
            np.save(parts / f"part_{n_batches:08d}.npy", rows.astype(dtype))
            pbar.update(len(rows))
        planned += rows_here
        n_batches += 1
    pbar.close()
    d_model = int(model.config.get_text_config().hidden_size)
    _barrier(world_size)
    if rank == 0:
        _join_parts(parts, out_dir, n_batches, shard_tokens, dtype, d_model, layer)
    _barrier(world_size)
    return json.loads((out_dir / "meta.json").read_text())


def _barrier(world_size: int) -> None:
    if world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def _join_parts(parts: Path, out_dir: Path, n_parts: int, shard_tokens: int, dtype: str,
                d_model: int, layer: int) -> None:
    """Stream the parts, in order, into shards of ``shard_tokens`` rows and write the meta."""
    import shutil

    pending: list[np.ndarray] = []
    shards: list[int] = []

    def write(rows: np.ndarray) -> None:
        np.save(out_dir / f"shard_{len(shards):05d}.npy", rows)
        shards.append(len(rows))

    held = 0
    for i in range(n_parts):
        rows = np.load(parts / f"part_{i:08d}.npy")
        pending.append(rows)
        held += len(rows)
        while held >= shard_tokens:
            joined = np.concatenate(pending)
            write(joined[:shard_tokens])
            pending, held = [joined[shard_tokens:]], len(joined) - shard_tokens
    if held:
        write(np.concatenate(pending))
    shutil.rmtree(parts)
    meta = {"shard_rows": shards, "n_tokens": int(sum(shards)), "d_model": d_model,
            "dtype": dtype, "layer": layer}
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))


class ActivationStore:
    """The shards of one activation cache entry, read lazily (memory-mapped) or into memory."""

    def __init__(self, directory: str | Path, in_memory: bool = False):
        self.directory, self.in_memory = Path(directory), in_memory
        self.meta = json.loads((self.directory / "meta.json").read_text())
        mode = None if in_memory else "r"
        self.shards = [np.load(self.directory / f"shard_{i:05d}.npy", mmap_mode=mode)
                       for i in range(len(self.meta["shard_rows"]))]
        self.offsets = np.concatenate([[0], np.cumsum(self.meta["shard_rows"])]).astype(np.int64)

    def __reduce__(self):
        """Pickled as its folder: another process (a training worker) opens the same shards
        instead of receiving a copy of every row."""
        return ActivationStore, (self.directory, self.in_memory)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    @property
    def d_model(self) -> int:
        return int(self.meta["d_model"])

    def rows(self, index_N: np.ndarray) -> np.ndarray:
        """Rows at global indices, as float32, in the order given."""
        index_N = np.asarray(index_N, dtype=np.int64)
        shard_N = np.searchsorted(self.offsets, index_N, side="right") - 1
        out_ND = np.empty((len(index_N), self.d_model), dtype=np.float32)
        for s in np.unique(shard_N):
            m = shard_N == s
            out_ND[m] = self.shards[s][index_N[m] - self.offsets[s]]
        return out_ND

    def split(self, start: int, stop: int) -> "ActivationSlice":
        return ActivationSlice(self, start, stop)


class ActivationSlice:
    """A contiguous range of a store's rows; draws training batches with a torch generator."""

    def __init__(self, store: ActivationStore, start: int, stop: int):
        if not 0 <= start < stop <= store.n_tokens:
            raise ValueError(f"rows {start}:{stop} are outside the store's {store.n_tokens} rows")
        self.store, self.start, self.stop = store, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def sample(self, generator: Any, n: int, rows: slice = slice(None)) -> Any:
        """``n`` rows drawn uniformly with replacement; ``rows`` keeps a part of them (one
        process's share of a batch under torchrun), reading only those from the shards."""
        import torch

        index = torch.randint(self.start, self.stop, (n,), generator=generator).numpy()
        return torch.from_numpy(self.store.rows(index[rows]))

    def all(self) -> np.ndarray:
        return self.store.rows(np.arange(self.start, self.stop))


def cached_activations(model_name: str, corpus: str = "gensim", *, n_tokens: int,
                       revision: str | None = None, layer: int = -1, context_length: int = 128,
                       batch_size: int = 16, dtype: str = "float16", shard_tokens: int = 1 << 16,
                       max_windows_per_doc: int = 0, device: str = "auto",
                       model_dtype: str = "auto", progress: bool = True,
                       in_memory: bool = True, loaded: Any = None) -> ActivationStore:
    """The activation shards for these settings, built on a cache miss (model loaded only then).

    ``loaded``: a function returning ``(model, tokenizer)`` of that name and dtype (e.g. an
    :class:`ipta.lm.models.LazyModel`), called only on a miss."""
    from ipta.lm.models import load_model, model_fingerprint

    # The batch, device, progress and memory layout cannot change a row (padding is masked).
    spec = call_spec(cached_activations, locals(),
                     ignore=("batch_size", "device", "progress", "in_memory", "loaded"),
                     replace={"model_name": model_fingerprint(model_name, revision),
                              "corpus": corpus_fingerprint(corpus)})

    rank, world_size = distributed_world()

    def build(tmp: Path) -> None:
        model, tokenizer = loaded() if loaded is not None else load_model(
            model_name, revision=revision, device=device, dtype=model_dtype)
        check_corpus_rows(tokenizer, corpus, n_tokens, context_length, max_windows_per_doc)
        build_activation_shards(model, tokenizer, corpus_texts(corpus), tmp, n_tokens=n_tokens,
                                layer=layer, context_length=context_length,
                                batch_size=batch_size, dtype=dtype, shard_tokens=shard_tokens,
                                max_windows_per_doc=max_windows_per_doc, progress=progress,
                                rank=rank, world_size=world_size)

    # Under torchrun, every rank extracts its share of the windows into the same entry.
    fill = get_or_build_dir_collective if world_size > 1 else get_or_build_dir
    return ActivationStore(fill("sae_activations", spec, build, code=("ipta.lm.corpus",)),
                           in_memory=in_memory)

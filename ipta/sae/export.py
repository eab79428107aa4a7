"""Export a trained SAE in the layout other SAE tools load (SAELens: ``cfg.json`` and
``sae_weights.safetensors``), and an index of the book's trained runs by name.

The layout, as SAELens reads it: ``encode(x) = act(pre)`` with
``pre = (x - b_dec) @ W_enc + b_enc`` (``apply_b_dec_to_input``), and
``decode(codes) = codes @ W_dec + b_dec``; ``W_enc`` is [d_in, d_sae], ``W_dec`` [d_sae, d_in].
``act`` depends on the architecture:

``standard``  ReLU (our p-annealing and structured SAEs; the adapter reading as 2F features,
              the sparse encoder's then the adapter's, each pair sharing one decoder row, so
              our code is the sum of feature f and feature F + f);
``topk``      the k largest pre-activations of each input, through a ReLU (our top-k);
``jumprelu``  ``pre * (pre > threshold)`` with a per-feature ``threshold`` (our batch-top-k at
              inference: its one global threshold, repeated per feature).

Our SAE rescales inputs by ``input_scale`` (s) before encoding and divides reconstructions by
it; that is folded into the weights: ``W_enc' = s W_enc``, ``W_dec' = W_dec / s`` and
``b_dec' = b_pre / s``, so the exported SAE takes and returns the model's own units. By default
(layout ``unit``) the decoder's row norm, 1 / s, is folded into the encoder as well, so its rows
have norm 1 and each exported code is ours divided by s (the same features active); layout
``raw`` keeps codes equal to ours. :func:`saelens_encode` / :func:`saelens_decode` restate those semantics
independently of our model code, for the round-trip test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ipta.config import ConfigError

def sae_directory(path: str | Path) -> Path:
    """The folder holding ``cfg.json`` and ``sae.safetensors``: ``path`` itself or its ``sae/``
    (a run folder of the SAE chapter's cache)."""
    path = Path(path)
    for candidate in (path, path / "sae"):
        if (candidate / "cfg.json").is_file() and (candidate / "sae.safetensors").is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no saved SAE (cfg.json and sae.safetensors, in it or "
                            "in its sae/ folder)")


LAYOUTS = ("unit", "raw")
"""``unit``: decoder rows of norm 1 (what SAEBench and Neuronpedia assume), the decoder's norm
folded into the encoder so reconstructions are unchanged and each code is ours times one
constant (recorded as ``ipta_code_factor``); ``raw``: our decoder as trained, rows of norm
1 / input_scale, codes equal to ours."""

SAELENS_FORMAT = "6.0.0"
"""The SAELens cfg layout written (``metadata.sae_lens_version``): from 6.0 on, SAELens keeps
every metadata field of a cfg that names a version; without one it rebuilds the metadata from
top-level keys and drops the rest."""


def saelens_weights(sae, layout: str = "unit") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The SAELens architecture fields and the weights, normalisation folded in; the mechanism
    says how its inference rule maps (:meth:`ipta.sae.mechanisms.Mechanism.saelens`). The
    fields include ``ipta_code_factor``: exported codes are ours times it."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    s = sae.input_scale.detach().double()
    tensors = {"W_enc": (sae.W_enc_DF.detach().double() * s),
               "W_dec": (sae.W_dec_FD.detach().double() / s),
               "b_enc": sae.b_enc_F.detach().double(),
               "b_dec": (sae.b_pre_D.detach().double() / s)}
    fields = sae.mechanism.saelens(tensors, s)
    factor = 1.0
    if layout == "unit":
        # SAELens's fold_W_dec_norm, done here: every row has the same norm (1 / s), so a top-k
        # selection or a global threshold is unchanged by the fold.
        norms_F = tensors["W_dec"].norm(dim=1)
        spread = float((norms_F.max() - norms_F.min()) / norms_F.mean())
        if spread > 1e-4:
            raise ValueError(f"layout 'unit' needs decoder rows of one norm (ours are kept at "
                             f"unit norm); these differ by {spread:.1e} (relative): export "
                             "with layout 'raw'")
        tensors["W_dec"] = tensors["W_dec"] / norms_F[:, None]
        tensors["W_enc"] = tensors["W_enc"] * norms_F[None, :]
        tensors["b_enc"] = tensors["b_enc"] * norms_F
        if "threshold" in tensors:
            tensors["threshold"] = tensors["threshold"] * norms_F
        factor = float(norms_F.mean())
        if fields["architecture"] == "topk":
            fields["rescale_acts_by_decoder_norm"] = True  # lets SAELens fold it again (a no-op)
    fields["ipta_code_factor"] = factor
    return fields, {k: v.float().contiguous() for k, v in tensors.items()}


def hook_names(model_name: str, layer: int) -> tuple[str, str]:
    """``(hook_name, hf_hook_name)`` of ``hidden_states[layer]``: the TransformerLens hook (the
    residual stream after block ``layer - 1``, or after the final norm for ``-1``) and the
    Hugging Face module whose output it is."""
    neox = any(key in model_name.lower() for key in ("pythia", "neox"))
    prefix = "gpt_neox" if neox else "model"
    if layer == -1:
        return "ln_final.hook_normalized", f"{prefix}.{'final_layer_norm' if neox else 'norm'}"
    if layer == 0:
        return "hook_embed", f"{prefix}.{'embed_in' if neox else 'embed_tokens'}"
    return f"blocks.{layer - 1}.hook_resid_post", f"{prefix}.layers.{layer - 1}"


class ExportRefused(ConfigError):
    """``OUT`` cannot take the export (a file, or a folder holding something else): a bad
    argument, refused before anything is written."""


def _prepare_out(out: Path) -> None:
    """Refuse an ``out`` that is a file or a non-empty folder, unless the folder holds exactly an
    earlier export by ipta (which is then replaced whole)."""
    if out.exists() and not out.is_dir():
        raise ExportRefused(f"OUT {str(out)!r} is a file; name a folder (new or empty)")
    if out.is_dir() and any(out.iterdir()):
        names = {p.name for p in out.iterdir()}
        earlier = names == {"cfg.json", "sae_weights.safetensors"}
        if earlier:
            try:
                cfg = json.loads((out / "cfg.json").read_text())
                earlier = cfg.get("metadata", {}).get("exported_by") == "ipta"
            except (OSError, ValueError, AttributeError):
                earlier = False
        if not earlier:
            raise ExportRefused(f"OUT {str(out)!r} is not empty and holds no earlier ipta "
                                f"export (it holds {', '.join(sorted(names)[:3])}); name a new "
                                "or empty folder")


def export_saelens(source: str | Path, out: str | Path, *, model_name: str | None = None,
                   layer: int | None = None, layout: str = "unit") -> Path:
    """Write ``out/cfg.json`` and ``out/sae_weights.safetensors`` for the SAE at ``source``
    (a saved SAE or run folder, or ``variant:seed[:alpha[:k]]`` of a run the book trained), in
    SAELens 6's layout with its metadata (every field survives ``SAE.load_from_disk``).

    Model, layer and context length come from the run index when the run is one the book
    trained (:func:`read_index`); the arguments override them. ``out`` is written whole, in a
    temporary folder renamed into place; an earlier export there is replaced, anything else
    refused (:class:`ExportRefused`)."""
    import os
    import shutil
    import tempfile

    from safetensors.torch import save_file

    from ipta.sae.model import load_sae

    out = Path(out).absolute()
    _prepare_out(out)
    directory = sae_directory(find_run(source) if ":" in str(source) else source)
    _refuse_if_damaged(directory)
    sae = load_sae(directory)
    known = read_index().get(directory.parent.name, {})
    model_name = model_name or known.get("model") or "unknown"
    layer = known.get("layer", -1) if layer is None else layer
    fields, tensors = saelens_weights(sae, layout)
    factor = fields.pop("ipta_code_factor")
    hook, hf_hook = hook_names(model_name, layer)
    cfg = {**fields, "d_in": int(sae.config["d_model"]), "d_sae": int(tensors["b_enc"].shape[0]),
           "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none",
           "metadata": {"sae_lens_version": SAELENS_FORMAT, "model_name": model_name,
                        "hook_name": hook, "hf_hook_name": hf_hook,
                        "context_size": known.get("context_size"), "prepend_bos": True,
                        "exported_by": "ipta", "ipta_mechanism": sae.config["mechanism"],
                        "ipta_hparams": sae.config["hparams"], "ipta_layer": layer,
                        "ipta_layout": layout, "ipta_code_factor": factor}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file(tensors, str(tmp / "sae_weights.safetensors"))
        (tmp / "cfg.json").write_text(json.dumps(cfg, indent=1, sort_keys=True))
        for path in tmp.iterdir():  # readable by others, as exports are shared
            path.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def saelens_encode(cfg: dict[str, Any], tensors: dict[str, torch.Tensor],
                   x_ND: torch.Tensor) -> torch.Tensor:
    """Codes as SAELens computes them from an exported ``cfg`` and its weights."""
    pre = (x_ND - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]
    if cfg["architecture"] == "standard":
        return torch.relu(pre)
    if cfg["architecture"] == "jumprelu":
        return pre * (pre > tensors["threshold"])
    if cfg["architecture"] == "topk":
        top = pre.topk(cfg["k"], dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    raise ValueError(f"architecture {cfg['architecture']!r} is not one we export")


def saelens_decode(tensors: dict[str, torch.Tensor], codes_NF: torch.Tensor) -> torch.Tensor:
    return codes_NF @ tensors["W_dec"] + tensors["b_dec"]


def _refuse_if_damaged(directory: Path) -> None:
    """A saved SAE inside a cache entry (or a folder with a manifest) must match its manifest."""
    from ipta.cache import check_entry
    from ipta.integrity import MANIFEST

    for folder in (directory, directory.parent):
        if (folder / MANIFEST).exists():
            problem = check_entry(folder, full=True)
            if problem is not None:
                raise FileNotFoundError(f"{folder} is damaged ({problem}); nothing was exported. "
                                        "Run the SAE chapter again to rebuild it")
            return


# ----------------------------------------------------------------------- the runs' index
INDEX_NAME = "sae_runs_index.json"


def index_path() -> Path:
    from ipta.cache import cache_root

    return cache_root() / INDEX_NAME


def read_index() -> dict[str, dict[str, Any]]:
    """Run folder name -> what it is (variant, seed, alpha, k, model, layer, position)."""
    path = index_path()
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:  # only names runs; the next chapter run writes it again
        import warnings

        warnings.warn(f"{path} is unreadable and is ignored; run the SAE chapter to rewrite it")
        return {}


def record_runs(rows: list[dict[str, Any]]) -> Path:
    """Add the book's runs (each with a ``folder``) to the index, written atomically."""
    import errno
    import os
    import time
    import warnings

    from ipta.cache import named_lock

    path = index_path()
    try:
        with named_lock(INDEX_NAME):  # two chapter runs at once must not lose each other's rows
            index, now = read_index(), time.time()
            for row in rows:
                index[Path(row["folder"]).name] = {
                    **{k: v for k, v in row.items() if k != "folder"}, "recorded": now}
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(index, indent=1, sort_keys=True))
            tmp.replace(path)
    except OSError as err:  # a read-only cache serves reads; the names can wait
        if err.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        warnings.warn(f"the cache {path.parent} cannot be written ({err.strerror}): the runs' "
                      "index is not updated (`ipta export-sae` still takes a run folder)")
    return path


def run_name(row: dict[str, Any]) -> str:
    """An indexed run's name: ``variant:seed``, then ``k<k>`` for top-k and batch-top-k and
    ``a<alpha>`` for the structured readings (``topk:0:k32``, ``structured:1:a0.03``)."""
    from ipta.sae.mechanisms import MECHANISMS

    parts = [str(row["variant"]), str(row["seed"])]
    mechanism = MECHANISMS.get(row.get("variant"))
    if mechanism is not None and mechanism.uses_k:
        parts.append(f"k{row['k']}")
    if row.get("alpha") is not None and row["alpha"] == row["alpha"]:  # not None or NaN
        parts.append(f"a{row['alpha']:g}")
    return ":".join(parts)


def find_run(name: str) -> Path:
    """The folder of the indexed run ``variant:seed[:k<k>][:a<alpha>]`` (e.g. ``topk:0``): among
    runs still in the cache, those of the latest chapter run that trained one of that name,
    and the main table's when others share it; an error listing the names when none or
    several remain."""
    variant, *rest = str(name).split(":")
    want: dict[str, Any] = {"variant": variant}
    for i, part in enumerate(rest):
        if i == 0 and part.lstrip("-").isdigit():
            want["seed"] = int(part)
        elif part.startswith("k") and part[1:].isdigit():
            want["k"] = int(part[1:])
        elif part.startswith("a"):
            want["alpha"] = float(part[1:])
        else:
            raise FileNotFoundError(f"run name {name!r}: expected variant:seed[:k<k>][:a<alpha>]")
    from ipta.cache import cache_root

    folders = {p.name: p for p in cache_root().glob("sae_run/*")}
    index = {f: row for f, row in read_index().items() if f in folders}  # still in the cache
    hits = [folder for folder, row in index.items()
            if all(row.get(key) == v for key, v in want.items())]
    if len({index[h].get("recorded") for h in hits}) > 1:  # the latest book run's, if several
        latest = max(index[h].get("recorded", 0) for h in hits)
        hits = [h for h in hits if index[h].get("recorded", 0) == latest]
    main = [h for h in hits if index[h].get("runs") == "main"]
    if len(hits) > 1 and len(main) == 1:  # the run of the main table, unless said otherwise
        hits = main
    if len(hits) != 1:
        known = sorted({run_name(r) for r in index.values()})
        raise FileNotFoundError(f"run {name!r} matches {len(hits)} indexed runs; indexed: "
                                f"{', '.join(known) or 'none (run the SAE chapter first)'}")
    return folders[hits[0]]

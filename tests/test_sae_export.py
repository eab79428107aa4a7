"""Specification of ipta.sae.export: the SAELens layout computes our codes and reconstructions."""

import json

import pytest
import torch

from ipta.sae.export import (export_saelens, find_run, record_runs, saelens_decode,
                             saelens_encode)
from ipta.sae.model import SparseAutoencoder

ARCHITECTURES = {"topk": "topk", "batchtopk": "jumprelu", "panneal": "standard",
                 "structured": "standard", "adapter": "standard"}
"""Each built-in mechanism and the SAELens architecture that computes its inference codes."""

HPARAMS = {"topk": {"k": 5}, "batchtopk": {"k": 5}, "panneal": {}, "structured": {"alpha": 0.1},
           "adapter": {"alpha": 0.1}}


def trained_looking_sae(mechanism: str) -> SparseAutoencoder:
    """A 12 -> 40 SAE with every parameter and buffer moved off its initial value."""
    gen = torch.Generator().manual_seed(1)
    sae = SparseAutoencoder(12, 40, mechanism, HPARAMS[mechanism], seed=3)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
        sae.normalise_decoder()  # as after every training step
        sae.fit_normalisation(5 * torch.randn(256, 12, generator=gen) + 2)
        if mechanism == "batchtopk":
            sae.mechanism.threshold.fill_(0.4)
    return sae


def load_export(out):
    from safetensors.torch import load_file

    return json.loads((out / "cfg.json").read_text()), load_file(str(out / "sae_weights.safetensors"))


@pytest.mark.parametrize("layout", ["unit", "raw"])
@pytest.mark.parametrize("mechanism", sorted(ARCHITECTURES))
def test_exported_encode_and_decode_equal_ours(mechanism, layout, tmp_path):
    """On random inputs in the model's units: reconstructions equal ours to 1e-5 (relative);
    codes equal ours times the recorded factor (1 in the raw layout, 1 / input_scale in the
    unit layout, whose decoder rows have norm 1)."""
    sae = trained_looking_sae(mechanism)
    sae.save(tmp_path / "run" / "sae")
    cfg, tensors = load_export(export_saelens(tmp_path / "run", tmp_path / "out",
                                              model_name="m", layer=-1, layout=layout))
    x = 5 * torch.randn(300, 12, generator=torch.Generator().manual_seed(2)) + 2
    with torch.no_grad():
        ours_codes, ours_recon = sae.encode(x), sae(x)
    codes = saelens_encode(cfg, tensors, x)
    assert (codes != 0).sum() > 0
    torch.testing.assert_close(saelens_decode(tensors, codes), ours_recon, rtol=1e-5, atol=1e-5)
    width = 80 if mechanism == "adapter" else 40  # the adapter's branch: 40 more features
    if mechanism == "adapter":
        codes = codes[:, :40] + codes[:, 40:]
    factor = cfg["metadata"]["ipta_code_factor"]
    scale = float(sae.input_scale)
    assert factor == (pytest.approx(1 / scale) if layout == "unit" else 1.0)
    torch.testing.assert_close(codes, ours_codes * factor, rtol=1e-5, atol=1e-5)
    norms = tensors["W_dec"].norm(dim=1)
    target = torch.ones_like(norms) if layout == "unit" else torch.full_like(norms, 1 / scale)
    torch.testing.assert_close(norms, target, rtol=1e-5, atol=1e-6)
    assert cfg["architecture"] == ARCHITECTURES[mechanism]
    assert (cfg["d_in"], cfg["d_sae"]) == (12, width)
    assert tensors["W_enc"].shape == (12, width) and tensors["W_dec"].shape == (width, 12)


def test_the_cfg_carries_saelens_metadata_and_the_hook_names(tmp_path):
    """SAELens 6 keeps every metadata field of a cfg that names its version; the hook is the
    final norm's, in TransformerLens's naming and as a Hugging Face module path."""
    trained_looking_sae("topk").save(tmp_path / "run" / "sae")
    cfg, _ = load_export(export_saelens(tmp_path / "run", tmp_path / "out",
                                        model_name="smollm2-135m", layer=-1))
    meta = cfg["metadata"]
    assert meta["sae_lens_version"].startswith("6.") and meta["exported_by"] == "ipta"
    assert (meta["hook_name"], meta["hf_hook_name"]) == ("ln_final.hook_normalized",
                                                          "model.norm")
    assert meta["ipta_mechanism"] == "topk" and cfg["rescale_acts_by_decoder_norm"] is True
    cfg, _ = load_export(export_saelens(tmp_path / "run", tmp_path / "out2",
                                        model_name="EleutherAI/pythia-70m", layer=3))
    assert (cfg["metadata"]["hook_name"], cfg["metadata"]["hf_hook_name"]) == (
        "blocks.2.hook_resid_post", "gpt_neox.layers.2")


def test_an_export_replaces_an_earlier_one_and_refuses_anything_else(tmp_path):
    from ipta.sae.export import ExportRefused

    trained_looking_sae("panneal").save(tmp_path / "run" / "sae")
    out = tmp_path / "out"
    export_saelens(tmp_path / "run", out)
    export_saelens(tmp_path / "run", out)  # an earlier export of ours: replaced whole
    assert {p.name for p in out.iterdir()} == {"cfg.json", "sae_weights.safetensors"}
    assert oct((out / "cfg.json").stat().st_mode & 0o777) == oct(0o644)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportRefused, match="not empty"):
        export_saelens(tmp_path / "run", out)
    assert (out / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportRefused, match="is a file"):
        export_saelens(tmp_path / "run", tmp_path / "file")


def test_the_cfg_names_the_model_and_layer_of_an_indexed_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "sae_run" / "abc123"
    trained_looking_sae("topk").save(folder / "sae")
    record_runs([{"variant": "topk", "seed": 0, "alpha": None, "k": 5, "model": "smollm2-135m",
                  "layer": -1, "runs": "main", "folder": str(folder)}])
    assert find_run("topk:0") == folder
    cfg, _ = load_export(export_saelens("topk:0", tmp_path / "out"))
    meta = cfg["metadata"]
    assert (meta["model_name"], meta["ipta_layer"], cfg["k"]) == ("smollm2-135m", -1, 5)
    assert find_run("topk:0:k5") == folder
    with pytest.raises(FileNotFoundError, match="indexed: topk:0:k5"):
        find_run("batchtopk:0")


SAELENS_SCRIPT = """
import json, sys, torch
from sae_lens import SAE
from safetensors.torch import load_file, save_file
x = load_file(sys.argv[1])["x"]
for folder in sys.argv[2:]:
    sae = SAE.load_from_disk(folder, device="cpu")
    with torch.no_grad():
        codes = sae.encode(x)
        save_file({"codes": codes.contiguous(), "recon": sae.decode(codes).contiguous()},
                  folder + "/theirs.safetensors")
    meta = sae.cfg.metadata
    fields = {k: getattr(meta, k, None) for k in ("sae_lens_version", "model_name", "hook_name",
              "hf_hook_name", "context_size", "exported_by", "ipta_mechanism", "ipta_layout")}
    json.dump({"class": type(sae).__name__, "metadata": fields},
              open(folder + "/theirs.json", "w"), default=str)
"""
"""Loads each export with SAELens itself and writes its codes and reconstructions beside it: run
by an interpreter that has sae-lens (this one, or ``IPTA_SAELENS_PYTHON``: sae-lens pins its own
dependencies, so CI keeps it in a venv of its own)."""

LAYOUT_CASES = [(m, layout) for m in sorted(ARCHITECTURES) for layout in ("unit", "raw")]


@pytest.fixture(scope="module")
def saelens_readings(tmp_path_factory):
    """Every mechanism exported in both layouts, read back by SAELens in one interpreter (its
    import takes seconds): ``{(mechanism, layout): (sae, x, cfg, theirs)}``."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file, save_file

    python = os.environ.get("IPTA_SAELENS_PYTHON") or sys.executable
    if subprocess.run([python, "-c", "import sae_lens"], capture_output=True).returncode:
        if os.environ.get("IPTA_REQUIRE_SAELENS"):
            pytest.fail(f"IPTA_REQUIRE_SAELENS is set but {python} cannot import sae_lens")
        pytest.skip("sae-lens is not installed (CI installs it: .ci/run)")
    root = tmp_path_factory.mktemp("saelens")
    x = 5 * torch.randn(200, 12, generator=torch.Generator().manual_seed(4)) + 2
    save_file({"x": x}, str(root / "x.safetensors"))
    cases = {}
    for mechanism, layout in LAYOUT_CASES:
        sae = trained_looking_sae(mechanism)
        sae.save(root / mechanism / "sae")
        out = export_saelens(root / mechanism, root / f"{mechanism}-{layout}", model_name="m",
                             layer=-1, layout=layout)
        cases[mechanism, layout] = (sae, out)
    done = subprocess.run([python, "-c", SAELENS_SCRIPT, str(root / "x.safetensors"),
                           *(str(out) for _, out in cases.values())], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {key: (sae, x, json.loads((out / "cfg.json").read_text()),
                  load_file(str(out / "theirs.safetensors")),
                  json.loads((out / "theirs.json").read_text()))
            for key, (sae, out) in cases.items()}


@pytest.mark.parametrize("mechanism,layout", LAYOUT_CASES)
def test_sae_lens_loads_the_export_and_computes_the_same_codes(saelens_readings, mechanism,
                                                                layout):
    """SAELens's own loader and encoder, not our re-implementation: its reconstructions equal
    ours, its codes equal ours times the recorded factor (so the same L0), and every metadata
    field we write survives its load."""
    sae, x, cfg, theirs, loaded = saelens_readings[mechanism, layout]
    with torch.no_grad():
        ours_codes, ours_recon = sae.encode(x), sae(x)
    codes = theirs["codes"]
    if mechanism == "adapter":
        codes = codes[:, :40] + codes[:, 40:]
    assert (codes != 0).sum() > 0
    factor = cfg["metadata"]["ipta_code_factor"]
    torch.testing.assert_close(codes, ours_codes * factor, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(theirs["recon"], ours_recon, rtol=1e-4, atol=1e-4)
    assert torch.equal((codes != 0).sum(1), (ours_codes != 0).sum(1))  # L0 per row
    assert loaded["class"] == {"topk": "TopKSAE", "jumprelu": "JumpReLUSAE",
                               "standard": "StandardSAE"}[ARCHITECTURES[mechanism]]
    assert loaded["metadata"] == {k: cfg["metadata"][k] for k in loaded["metadata"]}
    assert loaded["metadata"]["exported_by"].startswith("ipta")
    assert loaded["metadata"]["ipta_layout"] == layout


def test_the_command_writes_the_layout_and_refuses_a_folder_without_an_sae(tmp_path, capsys):
    from ipta.cli import main

    trained_looking_sae("panneal").save(tmp_path / "run" / "sae")
    assert main(["export-sae", str(tmp_path / "run"), str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"cfg.json",
                                                               "sae_weights.safetensors"}
    assert main(["export-sae", str(tmp_path), str(tmp_path / "out2")]) == 1
    assert "holds no saved SAE" in capsys.readouterr().err


def test_a_name_trained_again_resolves_to_the_latest_run(tmp_path, monkeypatch):
    """The same name from an older chapter run (other settings, other folder) does not make the
    name ambiguous: the latest recording wins."""
    import time

    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    row = {"variant": "panneal", "seed": 0, "alpha": None, "k": 5, "runs": "main",
           "model": "m", "layer": -1}
    for name in ("old", "new"):
        folder = tmp_path / "cache" / "sae_run" / name
        trained_looking_sae("panneal").save(folder / "sae")
        record_runs([{**row, "folder": str(folder)}])
        time.sleep(0.01)
    assert find_run("panneal:0").name == "new"

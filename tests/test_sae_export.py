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
        sae.fit_normalisation(5 * torch.randn(256, 12, generator=gen) + 2)
        if mechanism == "batchtopk":
            sae.mechanism.threshold.fill_(0.4)
    return sae


def load_export(out):
    from safetensors.torch import load_file

    return json.loads((out / "cfg.json").read_text()), load_file(str(out / "sae_weights.safetensors"))


@pytest.mark.parametrize("mechanism", sorted(ARCHITECTURES))
def test_exported_encode_and_decode_equal_ours(mechanism, tmp_path):
    """On random inputs in the model's units: codes and reconstructions to 1e-5 (relative)."""
    sae = trained_looking_sae(mechanism)
    sae.save(tmp_path / "run" / "sae")
    cfg, tensors = load_export(export_saelens(tmp_path / "run", tmp_path / "out",
                                              model_name="m", layer=-1))
    x = 5 * torch.randn(300, 12, generator=torch.Generator().manual_seed(2)) + 2
    with torch.no_grad():
        ours_codes, ours_recon = sae.encode(x), sae(x)
    codes = saelens_encode(cfg, tensors, x)
    assert (codes != 0).sum() > 0
    torch.testing.assert_close(saelens_decode(tensors, codes), ours_recon, rtol=1e-5, atol=1e-5)
    width = 80 if mechanism == "adapter" else 40  # the adapter's branch: 40 more features
    if mechanism == "adapter":
        codes = codes[:, :40] + codes[:, 40:]
    torch.testing.assert_close(codes, ours_codes, rtol=1e-5, atol=1e-5)
    assert cfg["architecture"] == ARCHITECTURES[mechanism]
    assert (cfg["d_in"], cfg["d_sae"]) == (12, width)
    assert tensors["W_enc"].shape == (12, width) and tensors["W_dec"].shape == (width, 12)


def test_the_cfg_names_the_model_and_layer_of_an_indexed_run(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "sae_run" / "abc123"
    trained_looking_sae("topk").save(folder / "sae")
    record_runs([{"variant": "topk", "seed": 0, "alpha": None, "k": 5, "model": "smollm2-135m",
                  "layer": -1, "runs": "main", "folder": str(folder)}])
    assert find_run("topk:0") == folder
    cfg, _ = load_export(export_saelens("topk:0", tmp_path / "out"))
    assert (cfg["model_name"], cfg["hook_layer"], cfg["k"]) == ("smollm2-135m", -1, 5)
    assert find_run("topk:0:k5") == folder
    with pytest.raises(FileNotFoundError, match="indexed: topk:0:k5"):
        find_run("batchtopk:0")


def test_sae_lens_loads_the_export_and_computes_the_same_codes(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is not installed (optional)")
    sae = trained_looking_sae("topk")
    sae.save(tmp_path / "run" / "sae")
    out = export_saelens(tmp_path / "run", tmp_path / "out", model_name="m", layer=-1)
    theirs = sae_lens.SAE.load_from_disk(str(out), device="cpu")
    x = torch.randn(50, 12)
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), sae.encode(x), rtol=1e-5, atol=1e-5)


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

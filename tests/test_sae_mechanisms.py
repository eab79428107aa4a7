"""Specification of ipta.sae.mechanisms: the registry, and that a variant is one class.

A toy variant is defined here and nowhere else; the chapter's own code then trains, evaluates,
controls and exports it by name, which is the whole promise of the registry."""

import json

import pytest
import torch

from ipta.config import ConfigError
from ipta.sae import controls, runs
from ipta.sae.config import Config as SAEConfig
from ipta.sae.distributed import LOCAL
from ipta.sae.export import export_saelens, saelens_encode
from ipta.sae.mechanisms import MECHANISMS, Mechanism, register

SMOKE = dict(model="tiny:llama", concept_source="embedded", n_tokens=600, val_tokens=128,
             max_pairs_per_concept=3, n_features=64, k=4, alphas=(), matched_l0=False)


def test_registry_holds_the_four_variants_and_the_adapter_reading():
    assert set(MECHANISMS) >= {"topk", "batchtopk", "panneal", "structured", "adapter"}
    assert all(MECHANISMS[name].name == name for name in MECHANISMS)


def test_what_the_chapter_asks_of_a_variant_is_declared_on_its_class():
    assert [v for v in MECHANISMS if MECHANISMS[v].uses_k] == ["topk", "batchtopk"]
    assert {v for v in MECHANISMS if MECHANISMS[v].uses_alpha} == {"structured", "adapter"}
    assert MECHANISMS["structured"].without_alpha == "panneal"
    cfg = SAEConfig()
    assert MECHANISMS["batchtopk"].calibrates(cfg)
    assert not MECHANISMS["batchtopk"].calibrates(cfg.replace(batchtopk_threshold="moving_average"))
    assert MECHANISMS["topk"].training(cfg) == {"b_pre_init": "geometric_median", "grad_clip": 1.0}
    assert MECHANISMS["panneal"].training(cfg) == {"b_pre_init": "mean", "grad_clip": 0.0}
    hp = MECHANISMS["structured"].hparams_from(cfg, seed=3, alpha=0.3, k=7)
    assert (hp["alpha"], hp["seed"], hp["rank"]) == (0.3, 3, cfg.rank) and "k" not in hp


class Threshold(Mechanism):
    """Toy variant: ReLU codes above a fixed threshold, with an L1 penalty."""

    label = "toy threshold"
    saelens_architecture = "jumprelu"

    def __init__(self, theta: float = 0.1, l1: float = 0.01):
        super().__init__(theta=theta, l1=l1)
        self.theta, self.l1 = theta, l1

    @classmethod
    def hparams_from(cls, cfg, *, seed, alpha, k):
        return {"theta": 0.1, "l1": 0.01}

    def forward(self, pre_NF):
        acts = pre_NF.relu()
        return acts * (acts > self.theta)

    def penalty(self, codes_NF, step, branch_NF=None, group=LOCAL):
        return self.l1 * codes_NF.sum(-1).mean()

    def saelens(self, tensors, input_scale):
        tensors["threshold"] = torch.full_like(tensors["b_enc"], self.theta)
        return {"architecture": self.saelens_architecture}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    register("toy")(Threshold)
    yield "toy"
    del MECHANISMS["toy"]


def test_an_unregistered_variant_is_refused_naming_the_parameter():
    with pytest.raises(ConfigError, match="'variants'.*not a registered SAE variant"):
        SAEConfig.for_profile("smoke", variants=("topk", "nope"))


def test_a_variant_defined_in_one_class_is_trained_evaluated_controlled_and_exported(toy,
                                                                                     tmp_path):
    cfg = SAEConfig.for_profile("smoke", **SMOKE, variants=(toy, "panneal"), seeds=(0,))
    store, concepts = runs.chapter_inputs(cfg, progress=False)
    main, matched, ablation = runs.train_all(cfg, store, concepts, progress=False)
    trained = next(r for r in main if r.variant == toy)
    assert trained.final["val_mse"] > 0 and 0 <= trained.final["mean_pcc"] <= 1
    assert trained.history[-1]["step"] == cfg.steps and not matched and not ablation

    untrained = [r for r in controls.controls(cfg, store, concepts) if r.kind == "untrained"]
    assert {r.variant for r in untrained} == {toy, "panneal"}

    sae = trained.sae()
    out = export_saelens(trained.directory, tmp_path / "export", model_name="tiny", layer=-1)
    cfg_json = json.loads((out / "cfg.json").read_text())
    from safetensors.torch import load_file

    tensors = load_file(str(out / "sae_weights.safetensors"))
    x_ND = torch.as_tensor(store.rows(list(range(50))))
    with torch.no_grad():
        ours = sae.encode(x_ND)
    assert cfg_json["architecture"] == "jumprelu" and (ours != 0).any()
    factor = cfg_json["metadata"]["ipta_code_factor"]  # unit layout: codes are ours / s
    torch.testing.assert_close(saelens_encode(cfg_json, tensors, x_ND), ours * factor, rtol=1e-4,
                               atol=1e-4)

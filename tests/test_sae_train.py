"""Specification of ipta.sae.train: the one training loop, its checkpoints and exact resume."""

import pytest
import torch

from ipta.sae.mechanisms.ksparse import TopK
from ipta.sae.model import SparseAutoencoder
from ipta.sae.train import train_sae

HPARAMS = {"topk": {"k": 2}, "batchtopk": {"k": 2},
           "panneal": {"anneal_start": 4, "anneal_end": 18, "n_updates": 4, "sparsity_warmup": 3},
           "structured": {"anneal_start": 4, "anneal_end": 18, "n_updates": 4,
                          "sparsity_warmup": 3, "alpha": 0.2, "rank": 3}}


class Planted:
    """Sparse combinations of 12 random directions in 8 dimensions."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.dirs = torch.randn(12, 8, generator=g)

    def sample(self, generator, n, rows=slice(None)):
        z = (torch.rand(n, 12, generator=generator) < 0.15) * torch.rand(n, 12, generator=generator)
        return (z @ self.dirs)[rows]


class Killed(Exception):
    pass


def _train(name, ckpt=None, kill_at=None, steps=20):
    sae = SparseAutoencoder(8, 16, name, HPARAMS[name], seed=1)
    calls = {"n": 0}

    def evaluate(_sae):
        calls["n"] += 1
        if kill_at is not None and calls["n"] * 2 == kill_at:
            raise Killed
        return {}

    history = train_sae(sae, Planted(), steps=steps, batch_size=32, lr=1e-2, warmup_steps=3,
                        seed=7, n_normalisation=64, evaluate=evaluate, eval_every=2,
                        checkpoint_dir=ckpt, checkpoint_every=5 if ckpt else 0, progress=False)
    return sae, history


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_a_killed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(name, tmp_path):
    reference, ref_history = _train(name)
    with pytest.raises(Killed):
        _train(name, ckpt=tmp_path, kill_at=12)  # dies after the step-10 checkpoint
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_00000005", "step_00000010"]
    resumed, history = _train(name, ckpt=tmp_path)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["step"] for r in history] == [r["step"] for r in ref_history]
    assert [r["loss"] for r in history] == [r["loss"] for r in ref_history]


def _flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_checkpoint_is_skipped_for_the_previous_one_and_the_result_is_unchanged(
        damage, tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    reference, ref_history = _train("topk")
    ckpt = tmp_path / "ckpt"
    with pytest.raises(Killed):
        _train("topk", ckpt=ckpt, kill_at=12)
    weights = ckpt / "step_00000010" / "trainer.safetensors"
    if damage == "flip":
        _flip_byte(weights)
    elif damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        weights.unlink()
    with pytest.warns(UserWarning, match=r"step_00000010 .*damaged.*resuming from step_00000005"):
        resumed, history = _train("topk", ckpt=ckpt)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in history] == [r["loss"] for r in ref_history]
    assert list((tmp_path / "cache" / ".damaged" / "ckpt").glob("step_00000010.*"))


def test_with_every_checkpoint_damaged_training_starts_afresh_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("IPTA_CACHE_DIR", str(tmp_path / "cache"))
    reference, _ = _train("topk")
    with pytest.raises(Killed):
        _train("topk", ckpt=tmp_path / "ckpt", kill_at=12)
    for manifest in (tmp_path / "ckpt").glob("step_*/manifest.json"):
        manifest.write_text("{not json")
    with pytest.warns(UserWarning) as record:
        resumed, _ = _train("topk", ckpt=tmp_path / "ckpt")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and "resuming from step_00000005" in messages[0]
    assert "training starts afresh" in messages[1]
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_written_with_other_settings_is_refused(tmp_path):
    _train("topk", ckpt=tmp_path, steps=10)
    sae = SparseAutoencoder(8, 16, "topk", {"k": 2}, seed=1)
    with pytest.raises(ValueError, match="other settings"):
        train_sae(sae, Planted(), steps=20, batch_size=64, lr=1e-2, checkpoint_dir=tmp_path,
                  checkpoint_every=5, progress=False)


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_decoder_rows_stay_at_unit_norm(name):
    sae, _ = _train(name)
    torch.testing.assert_close(sae.W_dec_FD.norm(dim=1), torch.ones(16))


def test_training_reduces_the_reconstruction_error_on_planted_sparse_data():
    """Statistical: after 150 steps the error is under half the error of step 10."""
    sae = SparseAutoencoder(8, 24, "topk", {"k": 3}, seed=0)
    history = train_sae(sae, Planted(), steps=150, batch_size=64, lr=1e-2, warmup_steps=5,
                        evaluate=lambda s: {}, eval_every=10, progress=False)
    assert history[-1]["recon"] < 0.5 * history[0]["recon"]


def test_same_seed_gives_identical_weights_and_another_seed_does_not():
    a, _ = _train("batchtopk")
    b, _ = _train("batchtopk")
    assert torch.equal(a.W_dec_FD, b.W_dec_FD)
    c = SparseAutoencoder(8, 16, "batchtopk", HPARAMS["batchtopk"], seed=1)
    train_sae(c, Planted(), steps=20, batch_size=32, lr=1e-2, warmup_steps=3, seed=8,
              n_normalisation=64, progress=False)
    assert not torch.equal(a.W_dec_FD, c.W_dec_FD)


def test_dead_latent_accounting_reports_features_that_never_fire():
    sae = SparseAutoencoder(8, 16, "topk", {"k": 2}, seed=1)
    with torch.no_grad():
        sae.b_enc_F[8:] = -1e6  # half the features can never fire
    history = train_sae(sae, Planted(), steps=10, batch_size=32, lr=1e-3, warmup_steps=1,
                        dead_after_tokens=64, evaluate=lambda s: {}, eval_every=10,
                        progress=False)
    assert history[-1]["dead_fraction_train"] >= 0.5


def test_top_ks_sparse_decoding_trains_the_weights_dense_decoding_does(monkeypatch):
    """Decoding only the k kept rows per sample is the dense product in another order: after
    20 steps (AuxK on, features dying) the weights and dead-feature counts agree."""
    hp = {"k": 2, "auxk_alpha": 0.5, "k_aux": 4}

    def run():
        sae = SparseAutoencoder(8, 48, "topk", hp, seed=1)
        history = train_sae(sae, Planted(), steps=20, batch_size=32, lr=1e-2, warmup_steps=3,
                            seed=7, n_normalisation=64, dead_after_tokens=32,
                            evaluate=lambda s: {}, eval_every=5, progress=False)
        return sae, history

    sparse, sparse_history = run()
    monkeypatch.setattr(TopK, "sparse_train_codes", lambda self, pre: None)
    dense, dense_history = run()
    for key, value in dense.state_dict().items():
        torch.testing.assert_close(sparse.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert [r["dead_fraction_train"] for r in sparse_history] == [
        r["dead_fraction_train"] for r in dense_history]
    assert any(r["dead_fraction_train"] > 0 for r in dense_history)

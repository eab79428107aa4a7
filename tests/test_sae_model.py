"""Specification of ipta.sae.model: the one autoencoder, its gradients, save and load."""

import pytest
import torch

from ipta.sae.model import SparseAutoencoder, geometric_median, load_sae

HPARAMS = {"topk": {"k": 3}, "batchtopk": {"k": 3},
           "panneal": {"anneal_start": 2, "anneal_end": 8, "sparsity_warmup": 2},
           "structured": {"anneal_start": 2, "anneal_end": 8, "sparsity_warmup": 2,
                          "alpha": 0.5, "rank": 2}}


def _sae(name, d=8, f=16, seed=0):
    return SparseAutoencoder(d, f, name, HPARAMS[name], seed=seed)


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_forward_equals_decode_of_encode(name):
    sae = _sae(name)
    x = torch.randn(10, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sae(x), sae.decode(sae.encode(x)))


def test_decoder_rows_start_at_unit_norm():
    sae = _sae("topk")
    torch.testing.assert_close(sae.W_dec_FD.norm(dim=1), torch.ones(16))


def test_the_encoders_gradients_are_plain_autograds():
    """The hand-written backward pass of the encoder (no B x D gradient for the inputs unless
    they ask for one) gives the gradients autograd gives for (x - b_pre) W_enc + b_enc."""
    sae = _sae("topk")
    with torch.no_grad():
        sae.b_pre_D.normal_(generator=torch.Generator().manual_seed(5))
        sae.b_enc_F.normal_(generator=torch.Generator().manual_seed(6))
    x = torch.randn(10, 8, requires_grad=True)
    weights = (x, sae.b_pre_D, sae.W_enc_DF, sae.b_enc_F)
    out = sae.pre_activations(x)
    plain = torch.addmm(sae.b_enc_F, x - sae.b_pre_D, sae.W_enc_DF)
    assert torch.equal(out, plain)
    grad = torch.randn_like(out)
    for ours, theirs in zip(torch.autograd.grad(out, weights, grad),
                            torch.autograd.grad(plain, weights, grad)):
        torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_save_and_load_restore_inference_behaviour(name, tmp_path):
    sae = _sae(name, seed=3)
    x = torch.randn(40, 8, generator=torch.Generator().manual_seed(4)) * 5
    sae.fit_normalisation(x)
    with torch.no_grad():
        sae.b_enc_F.add_(0.2)
    for buf in sae.mechanism.buffers():  # non-default state: threshold, p, coefficient...
        if buf.dtype.is_floating_point:
            buf.add_(0.25)
    loaded = load_sae(sae.save(tmp_path / name))
    assert type(loaded.mechanism) is type(sae.mechanism)
    assert loaded.config == sae.config
    for a, b in zip(sae.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))
    torch.testing.assert_close(loaded(x), sae(x))


def test_unknown_mechanism_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="topk"):
        SparseAutoencoder(4, 8, "jumprelu")


def test_geometric_median_resists_an_outlier_and_minimises_the_summed_distance():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=gen)
    x[0] = torch.tensor([1000.0, 0.0, 0.0])
    gm = geometric_median(x)
    assert gm.norm() < 0.5 and x.mean(0).norm() > 4
    cost = lambda p: (x - p).norm(dim=1).sum()  # noqa: E731
    for step in torch.eye(3) * 1e-2:
        assert cost(gm) <= cost(gm + step) and cost(gm) <= cost(gm - step)

"""Specification of ipta.sae.model: the autoencoder, every registered mechanism, schedules, save/load."""

import pytest
import torch

from ipta.sae.model import (MECHANISMS, BatchTopK, PAnneal, SparseAutoencoder, load_sae, lr_scale,
                      next_p_step, nuclear_norm_estimate, p_at, p_index)

HPARAMS = {"topk": {"k": 3}, "batchtopk": {"k": 3},
           "panneal": {"anneal_start": 2, "anneal_end": 8, "sparsity_warmup": 2},
           "structured": {"anneal_start": 2, "anneal_end": 8, "sparsity_warmup": 2,
                          "alpha": 0.5, "rank": 2}}


def _sae(name, d=8, f=16, seed=0):
    return SparseAutoencoder(d, f, name, HPARAMS[name], seed=seed)


def test_registry_holds_the_four_variants_and_the_adapter_reading():
    assert set(MECHANISMS) == {"topk", "batchtopk", "panneal", "structured", "adapter"}


def test_the_adapter_adds_its_branch_codes_and_its_nuclear_term_acts_on_them_only():
    """codes = ReLU(pre) + ReLU(branch); with alpha > 0 the penalty grows with the branch's
    codes and ignores how the sparse codes are spread."""
    sae = SparseAutoencoder(6, 20, "adapter", {"alpha": 1.0, "rank": 3, "sparsity_warmup": 0},
                            seed=0)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    codes, branch = sae.codes(x)
    own = sae.mechanism(sae.pre_activations(x))
    torch.testing.assert_close(codes, own + branch)
    assert (branch > 0).any()
    small = sae.mechanism.penalty(own, 0, branch)
    large = sae.mechanism.penalty(own, 0, 3 * branch)
    assert large > small > sae.mechanism.penalty(own, 0, 0 * branch)


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_forward_equals_decode_of_encode(name):
    sae = _sae(name)
    x = torch.randn(10, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sae(x), sae.decode(sae.encode(x)))


def test_decoder_rows_start_at_unit_norm():
    sae = _sae("topk")
    torch.testing.assert_close(sae.W_dec_FD.norm(dim=1), torch.ones(16))


def test_topk_gives_exactly_k_active_features_when_preactivations_are_positive():
    sae = _sae("topk")
    with torch.no_grad():
        sae.b_enc_F.fill_(100.0)  # every pre-activation positive, so the ReLU removes none
    codes = sae.encode(torch.randn(50, 8))
    assert ((codes != 0).sum(1) == 3).all()


def test_batchtopk_keeps_k_times_batch_codes_in_training():
    mech = BatchTopK(k=3)
    pre = torch.rand(20, 16) + 0.1
    assert int((mech.train_codes(pre) != 0).sum()) == 3 * 20


@pytest.mark.parametrize("positive_share", [0.9, 0.3, 0.01, 0.0])
def test_batchtopk_training_codes_are_the_k_n_largest_of_the_batch(positive_share):
    """Whatever share of the codes is positive (the quick candidate set of the selection, its
    fallback to every positive code, none positive), the kept codes are exactly the plain
    top-(k N) of the batch's ReLU values."""
    g = torch.Generator().manual_seed(3)
    pre = torch.randn(64, 256, generator=g) + torch.tensor(positive_share).clamp(1e-6, 1 - 1e-6
                                                                              ).logit() / 1.7
    if positive_share == 0.0:
        pre = -pre.abs()
    mech = BatchTopK(k=4)
    acts = pre.relu().flatten()
    top = acts.topk(4 * 64)
    expected = torch.zeros_like(acts).scatter(0, top.indices, top.values).view_as(pre)
    assert torch.equal(mech.train_codes(pre), expected)


def test_batchtopk_candidates_hold_the_n_largest_values_and_only_positive_ones():
    g = torch.Generator().manual_seed(4)
    acts = torch.randn(100_000, generator=g).relu()
    n_positive = int((acts > 0).sum())
    for n in (1, 50, 3000, 60_000):  # the last is more than there are positive values
        cand = BatchTopK.candidates(acts, n)
        m = min(n, n_positive)
        assert (cand > 0).all() and cand.numel() >= m
        assert torch.equal(cand.topk(m).values, acts.topk(m).values)
    assert BatchTopK.candidates(acts, 100).numel() < 1000  # few pass, not every positive one


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


def test_batchtopk_uses_its_threshold_at_inference():
    sae = _sae("batchtopk")
    sae.mechanism.threshold.fill_(0.3)
    x = torch.randn(30, 8, generator=torch.Generator().manual_seed(2))
    pre = sae.pre_activations(x * sae.input_scale).relu()
    torch.testing.assert_close(sae.encode(x), pre * (pre > 0.3))


def test_batchtopk_threshold_is_the_first_minimum_then_a_moving_average():
    mech = BatchTopK(k=1, beta=0.5)
    mech.observe(torch.tensor([[0.0, 2.0], [4.0, 0.0]]), step=0)
    assert float(mech.threshold) == 2.0
    mech.observe(torch.tensor([[1.0, 0.0]]), step=1)
    assert float(mech.threshold) == pytest.approx(1.5)


@pytest.mark.parametrize("n", [1, 4, 10])
def test_p_schedule_boundaries(n):
    kw = dict(p_start=1.0, p_end=0.0, anneal_start=100, anneal_end=200, n_updates=n)
    assert p_at(0, **kw) == 1.0 and p_at(99, **kw) == 1.0 and p_at(100, **kw) == 1.0
    assert p_at(200, **kw) == pytest.approx(1.0 - (n - 1) / n)
    assert p_at(10_000, **kw) == p_at(200, **kw) > 0.0
    values = [p_at(s, **kw) for s in range(0, 300)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert len(set(values)) == n


def test_lr_and_sparsity_warmup_are_linear_then_flat():
    assert lr_scale(0, 200) == 0.0 and lr_scale(100, 200) == 0.5 and lr_scale(500, 200) == 1.0


def test_panneal_coefficient_keeps_the_penalty_continuous_when_p_steps():
    mech = PAnneal(initial_penalty=1.0, anneal_start=0, anneal_end=2, n_updates=3,
                   sparsity_warmup=0, queue=4)
    codes = torch.rand(32, 16) * 3
    before = mech.penalty(codes, 0)  # p = 1, queue learns L_p at p = 1 and at the next p
    mech.penalty(codes, 0)
    after = mech.penalty(codes, 1)   # p steps to 2/3 and the coefficient adapts
    assert float(mech.p) == pytest.approx(2 / 3)
    assert float(after) == pytest.approx(float(before), rel=1e-5)


def test_panneal_coefficient_changes_only_at_the_steps_where_p_changes():
    mech = PAnneal(initial_penalty=1.0, anneal_start=0, anneal_end=8, n_updates=5,
                   sparsity_warmup=0, queue=2)  # p = 1, 0.8, 0.6, 0.4, 0.2 at steps 0, 2, 4, 6, 8
    g = torch.Generator().manual_seed(0)
    changed = []
    for step in range(12):
        before = float(mech.coeff)
        mech.penalty(torch.rand(16, 8, generator=g) * (1 + step), step)
        if float(mech.coeff) != before:
            changed.append(step)
    assert changed == [2, 4, 6, 8]


def test_lp_penalty_has_finite_gradients_at_zero_codes():
    pre = torch.tensor([[-1.0, 0.5, 2.0]], requires_grad=True)
    PAnneal.lp(pre.relu(), 0.3).backward()
    assert torch.isfinite(pre.grad).all() and pre.grad[0, 0] == 0


def test_lp_penalty_gradient_is_p_codes_to_the_p_minus_1_on_positive_codes():
    codes = (torch.rand(8, 5, generator=torch.Generator().manual_seed(0)) - 0.3).relu()
    codes.requires_grad_(True)
    PAnneal.lp(codes, 0.7).backward()
    c = codes.detach()
    expected = torch.where(c > 0, 0.7 * c.clamp_min(1e-30).pow(-0.3), 0.0) / 8
    torch.testing.assert_close(codes.grad, expected, rtol=1e-5, atol=0)
    assert float(PAnneal.lp(c, 0.7)) == pytest.approx(float(c.pow(0.7).sum() / 8), rel=1e-6)


def test_next_p_step_is_the_first_later_step_where_the_p_index_moves():
    for a, e, n in [(0, 999, 10), (100, 200, 10), (5, 17, 4), (3, 3, 5), (0, 50, 1)]:
        for step in range(0, 260):
            i = p_index(step, a, e, n)
            brute = next((t for t in range(step + 1, 1200) if p_index(t, a, e, n) != i), None)
            assert next_p_step(step, a, e, n) == brute


def test_nuclear_norm_estimate_matches_exact_svd_on_a_small_low_rank_matrix():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(60, 4, generator=g) @ torch.randn(4, 40, generator=g)
    m += 1e-3 * torch.randn(60, 40, generator=g)
    exact = torch.linalg.svdvals(m)[:4].sum()
    assert float(nuclear_norm_estimate(m, rank=4)) == pytest.approx(float(exact), rel=1e-3)


def test_nuclear_norm_estimate_leaves_the_global_rng_untouched():
    m = torch.randn(20, 10)
    state = torch.random.get_rng_state()
    nuclear_norm_estimate(m, rank=3, seed=5)
    assert torch.equal(state, torch.random.get_rng_state())


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


def test_a_calibrated_batch_top_k_keeps_k_codes_per_sample_on_its_calibration_batch():
    mech = BatchTopK(k=6)
    pre = torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    mech.calibrate(pre)
    assert (mech(pre) != 0).sum(1).float().mean().item() == pytest.approx(6.0)


def test_geometric_median_resists_an_outlier_and_minimises_the_summed_distance():
    from ipta.sae.model import geometric_median

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=gen)
    x[0] = torch.tensor([1000.0, 0.0, 0.0])
    gm = geometric_median(x)
    assert gm.norm() < 0.5 and x.mean(0).norm() > 4
    cost = lambda p: (x - p).norm(dim=1).sum()  # noqa: E731
    for step in torch.eye(3) * 1e-2:
        assert cost(gm) <= cost(gm + step) and cost(gm) <= cost(gm - step)


def test_auxk_is_zero_without_dead_features_and_trains_only_dead_ones():
    from ipta.sae.model import auxk_loss

    gen = torch.Generator().manual_seed(1)
    pre = torch.randn(16, 10, generator=gen, requires_grad=True)
    W = torch.randn(10, 4, generator=gen, requires_grad=True)
    residual = torch.randn(16, 4, generator=gen)
    assert auxk_loss(pre, residual, torch.zeros(10, dtype=torch.bool), W, 3) == 0
    dead = torch.arange(10) >= 7
    loss = auxk_loss(pre, residual, dead, W, 3)
    loss.backward()
    assert loss > 0
    assert (pre.grad[:, ~dead] == 0).all() and (W.grad[~dead] == 0).all()
    assert W.grad[dead].abs().sum() > 0


def test_auxk_is_one_when_the_dead_features_reconstruct_nothing():
    """Normalised by the residual's variance: an all-negative pre-activation gives codes 0,
    so the error is the residual's own mean square around zero over its variance."""
    from ipta.sae.model import auxk_loss

    residual = torch.randn(64, 5, generator=torch.Generator().manual_seed(2))
    residual -= residual.mean(0)
    loss = auxk_loss(-torch.ones(64, 8), residual, torch.ones(8, dtype=torch.bool),
                     torch.randn(8, 5), 4)
    assert loss.item() == pytest.approx(1.0, rel=1e-5)

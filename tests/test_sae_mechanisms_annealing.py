"""Specification of ipta.sae.mechanisms.annealing: p-annealing, the structured SAE and its
adapter reading."""

import pytest
import torch

from ipta.sae.mechanisms.annealing import PAnneal, nuclear_norm_estimate
from ipta.sae.model import SparseAutoencoder


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


class _Sparse:
    """Sparse combinations of 40 random directions in 16 dimensions (about 5 active)."""

    def __init__(self):
        self.dirs = torch.randn(40, 16, generator=torch.Generator().manual_seed(0))

    def sample(self, generator, n, rows=slice(None)):
        on = torch.rand(n, 40, generator=generator) < 0.12
        return ((on * torch.rand(n, 40, generator=generator)) @ self.dirs)[rows]


@pytest.mark.parametrize("target", [4.0, 12.0])
def test_a_target_l0_steers_the_coefficient_until_training_l0_settles_there(target):
    """Whatever lambda_0 and p do, the coefficient follows the batch L0 to the target: within
    25% of it over the last 100 of 600 steps (batches of 256; without steering the same
    lambda_0 ends elsewhere)."""
    from ipta.sae.train import train_sae

    hp = {"initial_penalty": 0.3, "anneal_start": 200, "anneal_end": 599, "n_updates": 5,
          "sparsity_warmup": 50}
    l0 = {}
    for steer in (0.0, target):
        sae = SparseAutoencoder(16, 64, "panneal", {**hp, "target_l0": steer}, seed=0)
        history = train_sae(sae, _Sparse(), steps=600, batch_size=256, lr=3e-3, warmup_steps=20,
                            evaluate=lambda s: {"l0": float((s.encode(_Sparse().sample(
                                torch.Generator().manual_seed(9), 512)) > 0).sum(1).float()
                                .mean())},
                            eval_every=50, progress=False)
        l0[steer] = [h["l0"] for h in history[-2:]]
    assert all(abs(x - target) <= 0.25 * target for x in l0[target]), l0
    assert abs(l0[0.0][-1] - target) > abs(l0[target][-1] - target), l0


def test_nuclear_norm_gradient_equals_a_full_svds_gradient():
    """The gradient the estimate applies (U_r V_r^T from its own factors) equals autograd through
    an exact SVD's top-r singular values, on a matrix whose spectrum decays as trained codes' do."""
    g = torch.Generator().manual_seed(1)
    left, _ = torch.linalg.qr(torch.randn(96, 40, generator=g))
    right, _ = torch.linalg.qr(torch.randn(64, 40, generator=g))
    m = (left * 0.8 ** torch.arange(40.0)) @ right.T
    exact = m.clone().requires_grad_(True)
    torch.linalg.svdvals(exact)[:6].sum().backward()
    estimated = m.clone().requires_grad_(True)
    nuclear_norm_estimate(estimated, rank=6, oversample=10, niter=4).backward()
    torch.testing.assert_close(estimated.grad, exact.grad, rtol=0, atol=1e-4)


def test_nuclear_norm_gradient_scales_with_the_upstream_gradient():
    """Through a product the chain rule holds (the term sits inside alpha / sqrt(N))."""
    g = torch.Generator().manual_seed(2)
    m = (torch.randn(30, 5, generator=g) @ torch.randn(5, 20, generator=g)).requires_grad_(True)
    (2.5 * nuclear_norm_estimate(m, rank=3)).backward()
    U, _, Vh = torch.linalg.svd(m.detach(), full_matrices=False)
    torch.testing.assert_close(m.grad, 2.5 * U[:, :3] @ Vh[:3], rtol=0, atol=1e-4)


def test_the_target_l0_steering_never_starves_a_wide_dictionary():
    """A dictionary 32x wider than the data starts dense (L0 about half of F, far above the
    target): while L0 comes down, the coefficient must not rise so far that the dictionary
    collapses below the target and its features die. Held-out L0 never falls under a third of
    the target after the warm-up and ends within 30% of it, with fewer than a quarter of the
    features silent on 1,024 held-out samples."""
    from ipta.sae.train import train_sae

    target = 8.0
    x_eval = _Sparse().sample(torch.Generator().manual_seed(9), 1024)
    sae = SparseAutoencoder(16, 512, "panneal",
                            {"initial_penalty": 0.3, "anneal_start": 400, "anneal_end": 799,
                             "n_updates": 5, "sparsity_warmup": 50, "target_l0": target}, seed=0)

    def evaluate(s):
        codes = s.encode(x_eval)
        return {"l0": float((codes > 0).sum(1).float().mean()),
                "dead": float((codes.amax(0) == 0).float().mean())}

    history = train_sae(sae, _Sparse(), steps=800, batch_size=256, lr=3e-3, warmup_steps=20,
                        evaluate=evaluate, eval_every=25, progress=False)
    after_warmup = [h["l0"] for h in history if h["step"] > 50]
    assert min(after_warmup) >= target / 3, after_warmup
    assert abs(after_warmup[-1] - target) <= 0.3 * target, after_warmup
    assert history[-1]["dead"] < 0.25, history[-1]

"""Domain adaptation's losses: the gradient reversal layer, the MMD, the ramp, and the loss a run adds."""

import pytest
import torch

from engine.model.adapt import Adaptation, grad_reverse, mk_mmd, ramp


def test_the_gradient_reversal_layer_is_the_identity_forward_and_flips_and_scales_gradients():
    x = torch.randn(4, 3, requires_grad=True)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.3 * torch.arange(3.0).expand(4, 3))


def test_mmd_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
    same = float(mk_mmd(a, b))
    shifts = [float(mk_mmd(a, b + s)) for s in (0.25, 0.5, 1.0, 2.0)]
    assert 0 <= same < 0.05
    assert same < shifts[0] < shifts[1] < shifts[2] < shifts[3]


def test_the_ramp_starts_at_zero_and_reaches_the_strength():
    assert ramp(0.0, 1.0) == 0.0 and ramp(1.0, 0.5) == pytest.approx(0.5, abs=1e-4)
    assert ramp(0.1, 1.0) < ramp(0.3, 1.0) < ramp(0.6, 1.0)


def test_minimising_the_mmd_loss_pulls_the_two_domains_together():
    torch.manual_seed(0)
    src, tgt = torch.randn(64, 8), torch.randn(64, 8) + 1.5
    layer = torch.nn.Linear(8, 8)
    adapt = Adaptation("mmd", 8, strength=1.0)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    before = float(mk_mmd(layer(src), layer(tgt)).detach())
    for _ in range(200):
        loss, shown = adapt.loss(layer(src), layer(tgt), progress=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(mk_mmd(layer(src), layer(tgt)).detach()) < before / 2
    assert set(shown) == {"mmd", "adapt_weight"} and shown["adapt_weight"] == pytest.approx(1.0, abs=1e-4)


def test_dann_trains_its_domain_classifier_and_pushes_the_features_to_fool_it():
    """A step of the features along the gradient DANN gives them raises the domain classifier's loss; a step of the
    classifier lowers it."""
    torch.manual_seed(0)
    adapt = Adaptation("dann", 8, strength=1.0).eval()  # no dropout: the same loss before and after
    src = torch.randn(32, 8, requires_grad=True)
    tgt = (torch.randn(32, 8) + 1.0).requires_grad_()
    loss, shown = adapt.loss(src, tgt, progress=1.0)
    loss.backward()
    assert 0 <= shown["domain_acc"] <= 1 and shown["domain_loss"] == pytest.approx(float(loss))
    with torch.no_grad():
        moved, _ = adapt.loss(src - 0.1 * src.grad, tgt - 0.1 * tgt.grad, progress=1.0)
        for p in adapt.parameters():
            p -= 0.1 * p.grad
        learnt, _ = adapt.loss(src, tgt, progress=1.0)
    assert float(moved) > float(loss) > float(learnt)
    with pytest.raises(ValueError, match="not one of"):
        Adaptation("coral", 8)

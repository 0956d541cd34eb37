"""BatchNorm statistics re-estimated on other inputs (AdaBN): the plain average over the inputs, each layer's momentum
and mode put back, nothing else changed, and the sample the plan and the run share."""

import pytest
import torch
from torch import nn

from engine.model.bn_stats import BN_SAMPLE, bn_buffers, bn_sample, reestimate, statistics_of


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten())


def _batches(shift: float, n: int = 3) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(8, 3, 5, 5, generator=g) * 2 + shift for _ in range(n)]


def test_the_statistics_become_the_average_over_every_input_and_the_layer_is_put_back():
    model = _model().eval()
    bn = model[1]
    bn.momentum = 0.1
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "batches" not in k}
    batches = _batches(3.0)
    n = reestimate(model, iter(batches), model)
    with torch.no_grad():
        out = model[0](torch.cat(batches))  # the conv's output over all inputs at once
    assert n == 24
    assert torch.allclose(bn.running_mean, out.mean((0, 2, 3)), atol=1e-5)  # every batch, not the last few
    assert torch.allclose(bn.running_var, out.var((0, 2, 3)), rtol=0.05)
    assert bn.momentum == 0.1 and not bn.training and not model.training and not model[2].training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())  # no weight moved


def test_a_short_last_batch_weighs_as_its_photos_not_as_a_whole_batch():
    """40 photos read as 32 + 8 (a target folder under the sample's size): the mean is over the 40, not the two
    batches' means averaged."""
    model = _model().eval()
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(32, 3, 5, 5, generator=g), torch.randn(8, 3, 5, 5, generator=g) + 4.0]
    reestimate(model, iter(batches), model)
    with torch.no_grad():
        out = model[0](torch.cat(batches))
    assert torch.allclose(model[1].running_mean, out.mean((0, 2, 3)), atol=1e-5)


def test_statistics_of_holds_them_only_inside_the_block():
    model = _model().eval()
    before = bn_buffers(model)
    with statistics_of(model, iter(_batches(5.0)), model) as n:
        assert n == 24 and not torch.allclose(model[1].running_mean, before["1.running_mean"])
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_what_cannot_be_re_estimated_says_so():
    with pytest.raises(ValueError, match="no BatchNorm"):
        reestimate(nn.Linear(2, 2), iter([torch.zeros(1, 2)]), lambda x: x)
    model = _model()
    with pytest.raises(ValueError, match="no photo"):
        reestimate(model, iter([]), model)


def test_the_sample_is_the_same_for_the_same_photos_and_seed_and_at_most_bn_sample():
    photos = [f"p{i:04d}.jpg" for i in range(BN_SAMPLE + 50)]
    first = bn_sample(photos, seed=3)
    assert first == bn_sample(photos, seed=3) and len(first) == BN_SAMPLE and first == sorted(first)
    assert first != bn_sample(photos, seed=4)
    assert bn_sample(photos[:10]) == photos[:10]

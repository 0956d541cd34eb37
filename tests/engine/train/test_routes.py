"""The input paths validate as scoring does: in eval mode (no dropout, BatchNorm on its running statistics), whatever
mode training left the module in, and leave every submodule's mode as it was."""

import numpy as np
import torch
from torch import nn

from engine.model.taps import ProbeHead
from engine.train.routes import FeaturePath
from engine.train.views import Views


class _Tapped:
    """What FeaturePath reads of a TapModel: its classifier."""

    def __init__(self, head: nn.Module):
        self.head = head

    def get_classifier(self) -> nn.Module:
        return self.head


def test_validation_on_cached_features_runs_the_head_without_dropout():
    torch.manual_seed(0)
    head = ProbeHead(16, 3, drop=0.5)
    views = Views(torch.randn(2, 10, 16), torch.randn(40, 16), None, None)
    path = FeaturePath(_Tapped(head), views, 4, torch.device("cpu"))
    head.train()  # as an epoch leaves it
    got = path.val_logits()
    assert torch.equal(got, path.val_logits())  # the same every time: no dropout
    with torch.no_grad():
        expected = head.eval()(views.val_feats)
    assert torch.allclose(got, expected)
    rows = np.array([3, 7])
    head.train()
    assert torch.allclose(path.val_logits(rows), expected[rows]) and head.training

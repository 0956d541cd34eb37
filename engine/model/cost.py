"""What a plan will cost before it runs, from a backbone's profile (`engine.model.profile`): the share of the forward
FLOPs in the groups that train, the forward pace the probe measured while it extracted features, and what a training
step costs against a forward pass, measured here once per architecture (it differs by family far more than FLOPs
say)."""

from __future__ import annotations

from engine.model.profile import BackboneProfile


# PLR0913: each argument is one measured input of the cost model
def epoch_seconds(  # noqa: PLR0913
    profile: BackboneProfile,
    trainable: list[str],
    n_train: int,
    n_val: int,
    images_per_s: float,
    val_views: int = 1,
) -> float:
    """Seconds for one fine-tuning epoch on the full-forward path: every training image's forward at the probe's pace
    (decoding included), plus what a training step costs beyond a forward pass (`profile`'s measured step costs) in
    proportion to the FLOPs of the `trainable` groups; then the validation forward of `val_views` views of each val
    image.

    Args:
        images_per_s: Forward throughput of the whole network, measured by the probe.
    """
    share = profile.flops_share(trainable)
    backward = max(0.0, profile.step_s - profile.forward_s) * share if share else 0.0
    return n_train * (1 / images_per_s + backward) + n_val * val_views / images_per_s


def cached_epoch_seconds(profile: BackboneProfile, trainable: list[str], n_train: int, n_val: int) -> float:
    """Seconds for one fine-tuning epoch on cached activations: a training step through the `trainable` groups alone
    for every training image (their share of the FLOPs of a measured step), then their forward for each val image."""
    return profile.flops_share(trainable) * (n_train * profile.step_s + n_val * profile.forward_s)

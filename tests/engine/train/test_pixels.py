"""The GPU input path's pieces, on the CPU: photos decoded once into a memory-mapped array, batches read ahead, and a
run that trains through it (TRANSFERLAB_DEVICE_INPUT=1 takes the path on any device)."""

import numpy as np
import pytest
import torch
from conftest import SAMPLE

from engine.data.batch_augment import working_side
from engine.model.catalogue import input_spec
from engine.plan.config import TrainConfig
from engine.runs.store import RunStore
from engine.train import pixels
from engine.service.training import train

SPEC = input_spec("tf_efficientnet_lite0")
PATHS = sorted(str(p) for p in (SAMPLE / "train").glob("*/*"))[:10]


def test_photos_are_decoded_once_into_a_memory_mapped_array(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    arr = pixels.decoded_pixels(PATHS, SPEC)
    side = working_side(SPEC)
    assert isinstance(arr, np.memmap) and arr.shape == (10, 3, side, side) and arr.dtype == np.uint8
    from torchvision.transforms import v2

    from engine.data.augment import working_geometry
    from engine.data.decode import DECODED

    key, geometry = working_geometry(SPEC)  # the per-image path's working image, centre-cropped square
    assert np.array_equal(arr[0], v2.CenterCrop(side)(DECODED.get_many(PATHS[:1], key, geometry)[0]).numpy())
    monkeypatch.setattr(pixels, "load_image", lambda *a: pytest.fail("decoded again"))
    assert np.array_equal(pixels.decoded_pixels(PATHS, SPEC), arr)  # from the cache
    assert not list(tmp_path.rglob("*.partial"))


def test_batches_come_in_order_and_a_reader_error_reaches_the_training_thread():
    arr = np.arange(20 * 3 * 4 * 4, dtype=np.uint8).reshape(20, 3, 4, 4)
    batches = [np.array([3, 1]), np.array([7, 0, 19])]
    got = list(pixels.device_batches(arr, batches, torch.device("cpu")))
    assert [g.tolist() for g in got] == [arr[b].tolist() for b in batches]
    with pytest.raises(IndexError):
        list(pixels.device_batches(arr, [np.array([0]), np.array([99])], torch.device("cpu")))
    it = pixels.device_batches(arr, [np.array([i]) for i in range(20)], torch.device("cpu"))
    next(it)
    it.close()  # stopping early ends the reader


def test_a_run_trains_through_the_device_input_path(tiny_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_DEVICE_INPUT", "1")
    cfg = TrainConfig.create(
        data=str(tiny_folder),
        strategy="full",
        head_epochs=0,
        finetune_epochs=1,
        batch_size=4,
        augment="basic",
        random_erasing=0.25,
        val_fraction=0.34,
        cache_activations=False,
    )
    run = RunStore(tmp_path).create(cfg.to_dict())
    m = train(cfg, run)
    assert m.status == "finished", m.error
    steps = {e.name for e in run.events("setup")}
    assert "decode the training photos once" in steps
    assert len(run.events("step")) > 0

"""Augmented batches: per-image seeds make worker processes and the training thread produce the same pixels."""

import torch

from engine.model.catalogue import input_spec
from engine.data import augment as aug
from engine.data.batches import AugmentedImages, EpochBatches, loader_workers, make_loader
from engine.data.dataset import load_dataset


def _images(folder) -> AugmentedImages:
    spec = input_spec("tf_efficientnet_lite0")
    key, geom = aug.working_geometry(spec)
    paths = [it.path for it in load_dataset(str(folder), None, 0.0, 0).train]
    return AugmentedImages(paths, key, geom, aug.train_transform(spec, "basic"))


def test_worker_processes_give_the_training_threads_pixels(tiny_folder, monkeypatch):
    images = _images(tiny_folder)
    batches = EpochBatches(batch_size=4, base_seed=3)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).tolist()
    index_batches = batches.set_epoch(order, epoch=2)
    assert [i for b in index_batches for i in b] == order  # 18 images: the tail of 2 is kept
    expected = [torch.stack([images[(i, batches.seed_of(i, 2))] for i in b]) for b in index_batches]
    monkeypatch.setenv("TRANSFERLAB_WORKERS", "2")
    loader = make_loader(images, batches, torch.device("cpu"))
    for epoch_pass in range(2):  # persistent workers serve a second pass of the same epoch identically
        got = list(loader)
        assert len(got) == len(expected)
        assert all(torch.equal(g, e) for g, e in zip(got, expected))
    batches.set_epoch(order, epoch=3)  # a new epoch gives new augmentations
    assert not torch.equal(next(iter(loader)), expected[0])


def test_workers_only_on_cuda(monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_WORKERS", raising=False)
    assert loader_workers(torch.device("cpu")) == 0
    assert loader_workers(torch.device("cuda")) >= 0
    monkeypatch.setenv("TRANSFERLAB_WORKERS", "3")
    assert loader_workers(torch.device("cpu")) == 3


def test_small_tail_batches_are_dropped():
    batches = EpochBatches(batch_size=4, base_seed=0)
    assert batches.set_epoch(list(range(9)), 1) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches.set_epoch(list(range(10)), 1)[-1] == [8, 9]
    assert len(batches) == 3

"""Decoded images kept in memory: each decoded once per geometry, the least recently used dropped past the bound."""

from __future__ import annotations

import torch
from PIL import Image

from engine.data import decode
from engine.data.decode import DecodeCache


def _photos(tmp_path, n: int) -> list[str]:
    out = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(path)
        out.append(str(path))
    return out


def _counting(monkeypatch) -> list[str]:
    decoded = []
    real = decode.load_image

    def load(path, chans):
        decoded.append(path)
        return real(path, chans)

    monkeypatch.setattr(decode, "load_image", load)
    return decoded


def test_each_photo_is_decoded_once_per_geometry_and_returned_in_the_order_asked(tmp_path, monkeypatch):
    decoded, photos = _counting(monkeypatch), _photos(tmp_path, 3)
    cache = DecodeCache(max_bytes=10**6)
    first = cache.get_many(photos, "g1", lambda im: im, workers=2)
    again = cache.get_many(photos[::-1] + photos[:1], "g1", lambda im: im)
    assert sorted(decoded) == sorted(photos)  # nothing decoded twice
    assert [int(t[0, 0, 0]) for t in again] == [80, 40, 0, 0] and all(
        torch.equal(a, b) for a, b in zip(first, again[2::-1])
    )
    cache.get_many(photos[:1], "g2", lambda im: im.resize((4, 4)))  # another geometry: decoded again
    assert len(decoded) == 4 and cache.nbytes == 3 * 3 * 8 * 8 + 3 * 4 * 4


def test_past_its_bound_the_least_recently_used_is_dropped(tmp_path, monkeypatch):
    decoded, photos = _counting(monkeypatch), _photos(tmp_path, 3)
    cache = DecodeCache(max_bytes=2 * 3 * 8 * 8)  # two photos
    cache.get_many(photos[:2], "g", lambda im: im, workers=1)
    cache.get_many(photos[:1], "g", lambda im: im)  # photo 0 used again: photo 1 is now the oldest
    cache.get_many(photos[2:], "g", lambda im: im)  # pushes photo 1 out
    assert cache.nbytes == 2 * 3 * 8 * 8
    decoded.clear()
    cache.get_many(photos, "g", lambda im: im)
    assert decoded == [photos[1]]


def test_a_single_pass_keeps_nothing_and_clear_drops_everything(tmp_path):
    photos = _photos(tmp_path, 2)
    cache = DecodeCache(max_bytes=10**6)
    assert len(cache.get_many(photos, "g", lambda im: im, keep=False)) == 2 and cache.nbytes == 0
    cache.get_many(photos, "g", lambda im: im)
    cache.clear()
    assert cache.nbytes == 0

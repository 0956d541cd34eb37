import numpy as np
import pytest
from conftest import huge_header_png
from PIL import Image

from engine.data.imageio import check_image, load_image, to_rgb, viewable
from engine.errors import UnreadableImage


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "rot.jpg", 3).size == (20, 40)  # turned upright


@pytest.mark.parametrize(
    "mode,array",
    [
        ("L", np.full((5, 6), 100, np.uint8)),
        ("I;16", np.full((5, 6), 65535, np.uint16)),
        ("RGBA", np.zeros((5, 6, 4), np.uint8)),
    ],
)
def test_every_mode_becomes_8bit_rgb(mode, array):
    out = to_rgb(Image.fromarray(array) if mode == "I;16" else Image.fromarray(array, mode))
    assert out.mode == "RGB" and out.size == (6, 5)
    if mode == "I;16":
        assert np.asarray(out).max() == 255  # scaled by the 16-bit range, not clipped
    if mode == "RGBA":
        assert np.asarray(out).min() == 255  # fully transparent composites over white


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png", 3).mode == "RGB"


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "empty file"),
        (b"hello, not an image", "not an image"),
        (huge_header_png(), "refused"),
    ],
)
def test_bad_files_name_the_file_and_reason(tmp_path, content, needle):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage) as e:
        check_image(path)
    assert str(path) in str(e.value) and needle in str(e.value)


def test_a_strip_within_the_pixel_limit_is_refused_from_its_header_on_every_path(tmp_path):
    import io

    strip = huge_header_png(500_000, 128)  # 64 M pixels: within the limit, 2.4 GB once resized for the network
    (tmp_path / "strip.png").write_bytes(strip)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (128, 500_000, 3)})
    (tmp_path / "strip.npy").write_bytes(header.getvalue() + b"\x00" * 64)  # the header and a few bytes
    for refused in (
        lambda: check_image(tmp_path / "strip.png"),
        lambda: load_image(strip),  # an upload on the Predict page, Grad-CAM's photo
        lambda: load_image(tmp_path / "strip.png"),
        lambda: load_image(tmp_path / "strip.npy"),
    ):
        with pytest.raises(UnreadableImage, match=r"is a strip \(sides more than 100:1\); crop it"):
            refused()


def test_truncated_jpeg_is_detected(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImage, match="truncated"):
        check_image(tmp_path / "t.jpg")


@pytest.mark.parametrize("chans,mode", [(1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_image_files_load_with_the_asked_channel_count(tmp_path, chans, mode):
    Image.new("RGBA", (6, 5), (10, 20, 30, 128)).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png", chans)
    assert img.mode == mode and img.size == (6, 5)
    assert load_image((tmp_path / "a.png").read_bytes(), chans).mode == mode  # an upload's bytes too


def test_npy_arrays_hold_any_channel_count_and_are_checked(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    np.save(tmp_path / "ms.npy", np.full((5, 6, 7), 1000, np.uint16))
    arr = load_image(tmp_path / "ms.npy", 7)
    assert arr.shape == (5, 6, 7) and arr.dtype == np.uint8 and arr.max() == round(1000 / 65535 * 255)
    meta, _ = check_image(tmp_path / "ms.npy")
    assert (meta.width, meta.height, meta.mode) == (6, 5, "7ch")
    with pytest.raises(UnreadableImage, match="7 channels, the model takes 4"):
        load_image(tmp_path / "ms.npy", 4)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(UnreadableImage, match="obj.npy"):  # pickled objects are refused, never loaded
        check_image(tmp_path / "obj.npy")
    assert viewable(tmp_path / "ms.npy").mode == "RGB" and viewable(tmp_path / "a.png") == str(tmp_path / "a.png")
    with pytest.raises(UnreadableImage, match="at most 4 channels"):
        load_image(tmp_path / "a.png", 5)

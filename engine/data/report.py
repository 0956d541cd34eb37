"""The dataset health report: counts, imbalance, sizes and modes, unreadable files, duplicates and leakage."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from engine.data.dataset import Dataset
from engine.text import literal

IMBALANCE_WARN = 3.0
UPSCALE_NOTE = 1.5  # photos whose median short side is this many times below the model's input size get a note


@dataclass
class DatasetReport:
    """Everything a person should know about a dataset before training on it."""

    root: str
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> images
    imbalance_ratio: float  # largest / smallest class in train
    sizes: dict[str, int]  # "WxH" -> images
    modes: dict[str, int]  # PIL mode -> images
    unreadable: list[dict[str, str]]  # {"path", "reason"}
    duplicates: list[list[str]]  # groups of identical files
    leakage: list[list[str]]  # duplicate groups that span train and val/test
    conflicting_labels: list[list[str]]  # identical files under different classes
    tiny_classes: list[str]  # fewer than 2 training images
    val_source: str
    test_source: str = "none"
    warnings: list[str] = field(default_factory=list)
    in_chans: int = 3  # channels to train with: those of the .npy arrays when every image is one, else RGB

    def to_dict(self) -> dict:
        return asdict(self)


def upscale_note(ds: Dataset, input_size: int) -> str | None:
    """A note when the photos are much smaller than the model's input (64 px tiles for a 224 px network): every one is
    enlarged before training and prediction; None otherwise."""
    sides = sorted(min(m.width, m.height) for m in ds.meta.values())
    if not sides:
        return None
    median = sides[len(sides) // 2]
    if median * UPSCALE_NOTE > input_size:
        return None
    return (
        f"The photos are small (median short side {median} px): each is enlarged {input_size / median:.1f}x to "
        f"the {input_size} px the backbone reads, in training and in prediction alike. That adds no detail; "
        f"pretrained features still work well on such tiles."
    )


def _channels(metas: list) -> tuple[list[str], int]:
    """The images' channel count (3 unless every one is an array of another count), and a warning when the arrays
    and the images disagree or the first convolution will be adapted."""
    npy = Counter(int(m.mode.removesuffix("ch")) for m in metas if m.format == "NPY")
    in_chans = next(iter(npy)) if len(npy) == 1 and sum(npy.values()) == len(metas) else 3
    if npy and in_chans == 3 and (len(npy) > 1 or 3 not in npy):
        return [
            f"The .npy arrays have {', '.join(map(str, sorted(npy)))} channel(s) and the other images "
            f"are RGB: a model takes one channel count. Keep images of one kind."
        ], in_chans
    if in_chans != 3:
        return [
            f"Every image is a {in_chans}-channel array: training adapts the backbone's first "
            f"convolution from its RGB filters to {in_chans} channels."
        ], in_chans
    return [], in_chans


def _copies(duplicates: list, leakage: list, conflicting: list) -> list[str]:
    """The warnings about identical images: across splits (a leak), with two labels, or repeated within a split."""
    out = []
    if leakage:
        out.append(
            f"{len(leakage)} image(s) appear in both training and validation: validation accuracy "
            f"will be optimistic. Remove the copies from one split."
        )
    if conflicting:
        out.append(f"{len(conflicting)} identical image(s) carry different labels; fix the labels.")
    elif len(duplicates) > len(leakage):
        out.append(f"{len(duplicates) - len(leakage)} group(s) of exact duplicates within a split.")
    return out


def build_report(ds: Dataset, input_size: int | None = None) -> DatasetReport:
    """Computes the report from a loaded dataset (no file is read again); `input_size`, the backbone's input side,
    adds a note when the photos are much smaller."""
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val", "test"):
        c = Counter(ds.classes[it.label] for it in ds.split(split))
        if c:
            counts[split] = {cls: c.get(cls, 0) for cls in ds.classes}
    train = counts.get("train", {})
    nonzero = [n for n in train.values() if n]
    ratio = max(nonzero) / min(nonzero) if nonzero else 0.0

    by_digest: dict[str, list] = defaultdict(list)
    for it in ds.items:
        by_digest[ds.digests[it.path]].append(it)
    groups = [g for g in by_digest.values() if len(g) > 1]
    duplicates = [[it.path for it in g] for g in groups]
    leakage = [[it.path for it in g] for g in groups if len({it.split for it in g}) > 1]
    conflicting = [[it.path for it in g] for g in groups if len({it.label for it in g}) > 1]
    tiny = [cls for cls, n in train.items() if n < 2]

    metas = [ds.meta[it.path] for it in ds.items]
    sizes = Counter(f"{m.width}x{m.height}" for m in metas)
    modes = Counter(m.mode for m in metas)

    warnings, in_chans = _channels(metas)
    if ratio >= IMBALANCE_WARN:
        big, small = max(train, key=train.get), min((c for c in train if train[c]), key=train.get)
        warnings.append(
            f"Imbalanced classes: {literal(big)} has {train[big]} training images, {literal(small)} only "
            f"{train[small]} ({ratio:.1f}x). Consider class-balanced sampling or a weighted loss."
        )
    if tiny:
        warnings.append(
            f"{len(tiny)} class(es) have fewer than 2 training images: {', '.join(map(literal, tiny))}. "
            f"Add images; these classes cannot be validated."
        )
    if input_size and (note := upscale_note(ds, input_size)):
        warnings.append(note)
    if ds.skipped:
        warnings.append(f"{len(ds.skipped)} file(s) were skipped as unreadable or not images (listed below).")
    warnings += _copies(duplicates, leakage, conflicting)
    return DatasetReport(
        ds.root,
        ds.classes,
        counts,
        round(ratio, 2),
        dict(sizes.most_common()),
        dict(modes.most_common()),
        [{"path": s.path, "reason": s.reason} for s in ds.skipped],
        duplicates,
        leakage,
        conflicting,
        tiny,
        ds.val_source,
        ds.test_source,
        warnings,
        in_chans,
    )

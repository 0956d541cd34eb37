"""Downloads through the real hub client against a local server in the hub's URL layout (no network)."""

import subprocess
import threading

import pytest
import torch
from safetensors.torch import save

from engine.model.catalogue import build_model, get_entry
from engine.model.fetch import DownloadCancelled, DownloadFailed, remote_file
from engine.model.fetch import fetch_weights as fetch
from engine.model.weights import availability, create_backbone
from hubserver import Hub, HubServer

NAME = "mobilenetv3_small_100"


@pytest.fixture(scope="module")
def weights() -> tuple[bytes, dict]:
    torch.manual_seed(1)
    sd = build_model(NAME).state_dict()
    return save(sd), sd


@pytest.fixture
def hub(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "tl"))
    h = Hub()
    repo, filename = get_entry(NAME).hub_file
    h.add(repo, filename, weights[0])
    with HubServer(h) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield h


def _cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "hf").rglob("*") if p.is_file() or p.is_symlink())


def test_size_and_checksum_are_known_before_the_download(hub, weights):
    remote = remote_file(NAME)
    assert remote.size == len(weights[0]) and remote.sha256 and not remote.cached
    assert hub.gets == 0  # only a metadata request


def test_download_reports_progress_checks_the_checksum_and_is_found_offline(hub, weights, monkeypatch):
    seen = []
    info = fetch(NAME, progress=lambda stage, f: seen.append((stage, f)))
    fractions = [f for s, f in seen if s.startswith("download (")]
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1] == ("checksum", 1.0) and "matches" in info.note
    assert availability(NAME)["source"] == "hf-cache"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, used = create_backbone(NAME)
    assert used.sha256 == info.sha256
    torch.testing.assert_close(model.conv_stem.weight, weights[1]["conv_stem.weight"])


def test_a_dropped_connection_is_resumed_with_a_ranged_request(hub):
    hub.cut_at = 0.4
    info = fetch(NAME)
    assert hub.ranges and hub.ranges[0].startswith("bytes=") and int(hub.ranges[0][6:-1]) > 0
    assert "matches" in info.note


def test_a_checksum_mismatch_is_refused_and_nothing_is_kept(hub, tmp_path):
    hub.corrupt = True
    with pytest.raises(DownloadFailed, match="SHA-256.*removed"):
        fetch(NAME)
    assert not availability(NAME)["available"]
    assert not [f for f in _cache_files(tmp_path) if f.endswith(".safetensors") or len(f) == 64]


def test_cancel_stops_the_download_and_keeps_nothing(hub, tmp_path):
    hub.gate, cancel = threading.Event(), threading.Event()

    def progress(stage, fraction):
        cancel.set()
        hub.gate.set()

    with pytest.raises(DownloadCancelled):
        fetch(NAME, progress=progress, cancel=cancel)
    assert not availability(NAME)["available"]
    assert not [f for f in _cache_files(tmp_path) if "incomplete" in f or f.endswith(".safetensors")]


def test_a_missing_file_is_one_line(hub):
    hub.files.clear()
    with pytest.raises(DownloadFailed, match=r"the hub has no weights file for mobilenetv3_small_100") as e:
        fetch(NAME)
    assert "\n" not in str(e.value)


def test_no_network_and_offline_mode_are_one_line_each(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(DownloadFailed, match="cannot reach http://127.0.0.1:9"):
        fetch(NAME)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadFailed, match="HF_HUB_OFFLINE is set"):
        remote_file(NAME)
    assert hub.gets == 0


def test_a_full_disk_during_the_download_is_one_line_and_leaves_nothing(hub, tmp_path, monkeypatch):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    try:
        monkeypatch.setenv("HF_HOME", str(small))
        with pytest.raises(DownloadFailed, match=r"the disk is full while downloading .*Free about 10 MB") as e:
            fetch(NAME)
        assert "\n" not in str(e.value)
        kept = [
            p
            for p in small.rglob("*")
            if p.is_file()
            and p.parent.name in ("blobs", "snapshots")
            or "incomplete" in p.name
            or p.suffix == ".safetensors"
        ]
        assert not kept, kept
        assert not availability(NAME)["available"]
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_a_connection_that_keeps_dropping_is_one_line(hub, monkeypatch):
    import huggingface_hub.file_download as fd

    monkeypatch.setattr(fd.time, "sleep", lambda s: None)  # the client waits a second between its retries
    hub.cut_always = True
    with pytest.raises(DownloadFailed, match="kept dropping") as e:
        fetch(NAME)
    assert "\n" not in str(e.value) and not availability(NAME)["available"]


def _everything_under(root):
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize("field", ["etag", "commit"])
def test_an_etag_or_commit_with_path_segments_is_refused_before_anything_is_written(hub, tmp_path, field):
    setattr(hub, field, "../../../../escaped")
    before = _everything_under(tmp_path)
    with pytest.raises(DownloadFailed, match=f"answered a {'ETag' if field == 'etag' else 'commit'} .*not a plain"):
        fetch(NAME)
    assert hub.gets == 0 and not availability(NAME)["available"]
    assert not [p for p in _everything_under(tmp_path) - before if p.is_file() and "hf" not in p.parts]
    assert not list(tmp_path.parent.glob("escaped*")) and not list(tmp_path.glob("escaped*"))


def test_another_architectures_file_served_under_the_name_is_removed_and_refused(hub):
    import timm

    repo, filename = get_entry(NAME).hub_file
    hub.add(repo, filename, save(timm.create_model("resnet18").state_dict()))  # its SHA-256 matches its ETag
    with pytest.raises(DownloadFailed, match="does not fit it .*removed") as e:
        fetch(NAME)
    assert "\n" not in str(e.value) and not availability(NAME)["available"]


def test_a_server_that_hangs_mid_body_is_a_timeout_in_one_line(hub, monkeypatch):
    from huggingface_hub import constants

    import huggingface_hub.file_download as fd

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.setattr(fd.constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.setattr(fd.time, "sleep", lambda s: None)
    hub.hang = threading.Event()
    try:
        with pytest.raises(DownloadFailed) as e:
            fetch(NAME)
    finally:
        hub.hang.set()
    assert "timed out" in str(e.value) and "HF_HUB_OFFLINE" not in str(e.value) and "\n" not in str(e.value)
    assert not availability(NAME)["available"]


def test_a_download_killed_part_way_leaves_no_partial_file_after_the_next(hub, tmp_path):
    import os
    import signal
    import sys
    import time

    hub.delay = 0.05  # slow enough to be killed part-way
    code = f"from engine.model.fetch import fetch_weights; fetch_weights({NAME!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    deadline = time.time() + 60
    while time.time() < deadline and not [p for p in (tmp_path / "hf").rglob("*.incomplete") if p.stat().st_size]:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list((tmp_path / "hf").rglob("*.incomplete"))
    assert left and left[0].stat().st_size < len(hub.files[next(iter(hub.files))]), "killed after it finished"
    hub.delay = 0.0
    info = fetch(NAME)
    assert "matches" in info.note and not list((tmp_path / "hf").rglob("*.incomplete"))

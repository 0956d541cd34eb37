"""Nothing reaches the network unasked: `weights install`, `probe`, `train` and `check` run under an audit hook that
refuses every name lookup and connection (`sys.addaudithook` on `socket.getaddrinfo` and `socket.connect`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import timm
import torch

from engine.paths import REPO

DRIVER = textwrap.dedent(
    """
    import json, sys

    attempts = []

    def audit(event, args):
        if event in ("socket.getaddrinfo", "socket.connect"):
            attempts.append(f"{event} {args[1] if event == 'socket.connect' else args[0]}")
            raise ConnectionRefusedError(f"the network was reached: {event}")

    sys.addaudithook(audit)
    from engine.cli import main

    codes = [main(argv) for argv in json.loads(sys.argv[1])]
    print(json.dumps({"codes": codes, "attempts": attempts}))
    """
)


def test_install_probe_train_and_check_never_reach_the_network(tiny_folder, tmp_path):
    weights = tmp_path / "r18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), weights)
    data = str(tiny_folder)
    commands = [
        ["weights", "install", "resnet18", str(weights), "--quiet"],
        ["probe", "--data", data, "--json", "--quiet"],
        ["train", "--data", data, "--strategy", "feature-extraction", "--head-epochs", "1", "--json", "--quiet"],
        ["check", "--data", data, "--json", "--quiet"],
    ]
    env = {**os.environ, "TRANSFERLAB_HOME": str(tmp_path / "home"), "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)  # the audit, not the hub's offline switch, is what is tested
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"codes": [0, 0, 0, 0], "attempts": []}, out.stderr[-2000:]

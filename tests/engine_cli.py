"""The one way tests call TransferLab's command line as a user does: `python -m engine ...` in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE = [sys.executable, "-m", "engine"]


def engine_cli(
    *args: object, home: Path | None = None, env: dict | None = None, timeout: int = 300, text: bool = True, **popen
) -> subprocess.CompletedProcess:
    """Runs `python -m engine ARGS` from the repository's root and returns it finished, its output captured.

    Args:
        home: the TRANSFERLAB_HOME it uses (default: the tests' own, from the environment).
        env: more environment variables.
        text: decode stdout and stderr (False: bytes, for output that need not be UTF-8).
        popen: passed to `subprocess.run` (`input`, say).
    """
    extra = {"TRANSFERLAB_HOME": str(home)} if home is not None else {}
    return subprocess.run(
        [*ENGINE, *map(str, args)],
        cwd=REPO,
        env={**os.environ, **extra, **(env or {})},
        capture_output=True,
        text=text,
        timeout=timeout,
        **popen,
    )


def torchrun_cli(*args: object, home: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m engine ARGS` as two processes under torchrun (gloo on the CPU, one thread each), in `home`."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "engine"]
    return subprocess.run(
        [*launch, *map(str, args)],
        cwd=REPO,
        env={**os.environ, "TRANSFERLAB_HOME": str(home), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )

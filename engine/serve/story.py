"""The lesson's claim as this project measured it: `bench/story.py` trains the same backbone on the same photos from
scratch, as a linear probe and as auto plans it, and writes its table to `bench/results-story-cpu.txt`. Home quotes
that table, read here, and says nothing when it is missing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.paths import REPO

STORY_RESULTS = REPO / "bench" / "results-story-cpu.txt"
_ROW = re.compile(
    r"^(?P<data>\S+)\s+(?P<arm>.+?)\s+(?P<test>\d\.\d+)\s+(?P<low>\d\.\d+)-(?P<high>\d\.\d+)\s+(?P<photos>\d+)"
    r"\s+(?P<seconds>\d+)\s+(?P<epochs>\d+)\s+(?P<backbone>\S+)$"
)


@dataclass(frozen=True)
class StoryRow:
    """One arm of the story benchmark on one dataset, scored once on its test photos.

    Attributes:
        data: The dataset's folder name.
        arm: The arm (`auto`, `probe`, `scratch, long`, ...).
        test: Test accuracy.
        interval: Its 95% Wilson interval.
        photos: Test photos scored.
        seconds: Wall seconds the arm took.
        backbone: The backbone it trained.
    """

    data: str
    arm: str
    test: float
    interval: tuple[float, float]
    photos: int
    seconds: int
    backbone: str


@dataclass(frozen=True)
class Story:
    """The story on one dataset: the range from scratch, the probe and auto, on the same test photos."""

    data: str
    photos: int
    scratch: tuple[float, float]
    probe: float
    auto: float
    machine: str

    def sentence(self) -> str:
        """The claim in words, every number from the measured rows."""
        low, high = self.scratch
        scratch = f"{low:.0%}" if low == high else f"{low:.0%}–{high:.0%}"
        return (
            f"on {self.data} ({self.photos:,} test photos) a network trained from scratch reached {scratch}; an "
            f"ImageNet-pretrained network with only a new head trained reached {self.probe:.0%}, and TransferLab's "
            f"auto plan {self.auto:.0%}"
        )


def story_machine(path: Path = STORY_RESULTS) -> str:
    """The machine the table was measured on, as its header names it ("" when it does not)."""
    if not path.is_file():
        return ""
    header = path.read_text(encoding="utf-8").partition("\n")[0]
    return header.partition("machine:")[2].strip()


def story_rows(path: Path = STORY_RESULTS) -> list[StoryRow]:
    """The rows of the story benchmark's table at `path`; none when the file is missing."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line.strip())
        if m:
            rows.append(
                StoryRow(
                    data=m["data"],
                    arm=m["arm"],
                    test=float(m["test"]),
                    interval=(float(m["low"]), float(m["high"])),
                    photos=int(m["photos"]),
                    seconds=int(m["seconds"]),
                    backbone=m["backbone"],
                )
            )
    return rows


def stories(path: Path = STORY_RESULTS) -> list[Story]:
    """Each dataset of the table that has a scratch arm, a probe and auto, in the table's order."""
    by_data: dict[str, list[StoryRow]] = {}
    for row in story_rows(path):
        by_data.setdefault(row.data, []).append(row)
    out, machine = [], story_machine(path)
    for data, rows in by_data.items():
        scratch = [r.test for r in rows if r.arm.startswith("scratch")]
        probe = [r for r in rows if r.arm == "probe"]
        auto = [r for r in rows if r.arm == "auto"]
        if scratch and probe and auto:
            out.append(Story(data, auto[0].photos, (min(scratch), max(scratch)), probe[0].test, auto[0].test, machine))
    return out

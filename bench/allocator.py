"""The CPU allocator's effect: forward and training-step throughput with glibc's default malloc and with the settings
`engine.model.device.tune_cpu_allocator` applies (large buffers served from the heap and kept for the next batch).

Each setting runs in a process of its own (mallopt is process-wide). Measured: EfficientNet-Lite0 and ResNet-50 at
224 px, batch 32, random initialisation (the weights do not change the arithmetic): eval forward images/s, and train
steps (forward, backward, AdamW step) images/s; plus the kernel's share of the CPU time and the page faults.
Run by hand (about 2 minutes on 2 CPU cores):  .venv/bin/python bench/allocator.py [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKBONES = ("tf_efficientnet_lite0", "resnet50")

MEASURE = """
import json, resource, sys, time, torch
from engine.model.catalogue import build_model
from engine.model.device import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == "tuned" else False
name, reps = sys.argv[2], int(sys.argv[3])
model = build_model(name, num_classes=15)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x, y = torch.randn(32, 3, 224, 224), torch.randint(0, 15, (32,))

def forward():
    with torch.inference_mode():
        model.eval()(x)

def step():
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()

out = {"tuned": tuned}
for label, fn in (("forward", forward), ("train step", step)):
    fn()  # warm-up
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    rates = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        rates.append(32 / (time.perf_counter() - t))
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    out[label] = {"rates": rates, "kernel_share": (r1.ru_stime - r0.ru_stime) / cpu,
                  "faults": (r1.ru_minflt - r0.ru_minflt) / reps}
print(json.dumps(out))
"""


def measure(mode: str, name: str, reps: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, name, str(reps)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    print(f"{'backbone':24} {'pass':11} {'allocator':9} {'images/s':>9} {'kernel %':>9} {'faults/batch':>13}")
    for name in BACKBONES:
        results = {mode: measure(mode, name, args.reps) for mode in ("default", "tuned")}
        for label in ("forward", "train step"):
            for mode, r in results.items():
                m = r[label]
                print(
                    f"{name:24} {label:11} {mode:9} {statistics.median(m['rates']):9.1f} "
                    f"{100 * m['kernel_share']:9.0f} {m['faults']:13.0f}"
                )
            speedup = statistics.median(results["tuned"][label]["rates"]) / statistics.median(
                results["default"][label]["rates"]
            )
            print(f"{'':24} {label:11} {'ratio':9} {speedup:8.2f}x")


if __name__ == "__main__":
    main()

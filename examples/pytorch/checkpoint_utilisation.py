#!/usr/bin/env python3
"""GPU utilisation during checkpoints, with and without save_async, from gpu_check.sh's output.

    python3 examples/pytorch/checkpoint_utilisation.py OUT_DIR RUN [RUN ...]   # e.g. big big-async

Reads OUT_DIR/smi.csv (nvidia-smi samples: timestamp, utilization.gpu, ...) and OUT_DIR/runs.log
(each run's output, lines prefixed with a timestamp and the run's name), in which train.py logs
`pytorch: checkpoint-timing {...}` for each checkpoint:

- ``{"step", "mode", "start", "resume"}`` when the loop stopped for the checkpoint and when it
  went on (epoch seconds). A plain save blocks the loop for the whole checkpoint (torch.save,
  then keel's hand-off); with save_async only for the snapshot into CPU memory.
- ``{"step", "mode": "async", "written"}`` when the background thread had written it.

For each run it prints, over the checkpoints made while training still had steps to go (the last
one, at the final step, overlaps nothing): how long the loop was blocked per checkpoint, how long
a checkpoint took in all, the mean GPU utilisation during checkpoints (from the loop's stop to the
checkpoint written) and between them (training and evaluation), and the run's speed. The figures
also go to OUT_DIR/checkpoint-utilisation.json. nvidia-smi's utilization.gpu is the share of the
last sample period (1/6 s to 1 s, by GPU) in which a kernel ran, so samples at a window's edges
blur: read the figures as "busy" vs "idle", not to the percent.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from statistics import mean
from typing import Any, Dict, List, Optional, Tuple

TIMING = "pytorch: checkpoint-timing "


def read_samples(smi_csv: Path) -> List[Tuple[float, float]]:
    """(epoch seconds, utilization.gpu %) for each nvidia-smi sample (GPU 0 and any other alike)."""
    samples: List[Tuple[float, float]] = []
    with open(smi_csv, newline="") as f:
        for row in csv.reader(f):
            if len(row) < 2:
                continue
            try:  # nvidia-smi writes local time: "2025/01/31 12:00:00.123"
                when = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
                util = float(row[1].strip())
            except ValueError:  # the header, or a line nvidia-smi wrote about an error
                continue
            samples.append((when, util))
    return samples


def read_runs(runs_log: Path) -> Dict[str, Dict[str, Any]]:
    """Per run name: its checkpoint timings by step, and its result line (JSON)."""
    runs: Dict[str, Dict[str, Any]] = {}
    with open(runs_log) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 3)
            if len(parts) < 4:
                continue
            name, text = parts[2], parts[3]
            run = runs.setdefault(name, {"checkpoints": {}, "result": None})
            if text.startswith(TIMING):
                timing = json.loads(text[len(TIMING) :])
                run["checkpoints"].setdefault(timing["step"], {}).update(timing)
            elif text.startswith('{"final"'):
                run["result"] = json.loads(text)
    return runs


def utilisation(samples: List[Tuple[float, float]], spans: List[Tuple[float, float]]) -> Tuple[Optional[float], int]:
    inside = [u for t, u in samples if any(a <= t <= b for a, b in spans)]
    return (round(mean(inside), 1) if inside else None), len(inside)


def analyse(samples: List[Tuple[float, float]], run: Dict[str, Any]) -> Dict[str, Any]:
    result = run["result"] or {}
    last_step = result.get("final", {}).get("step")
    windows: List[Tuple[float, float]] = []
    blocked: List[float] = []
    for step in sorted(run["checkpoints"]):
        c = run["checkpoints"][step]
        if step == last_step or "start" not in c or "resume" not in c:
            continue
        if c.get("mode") == "async" and "written" not in c:
            continue
        end = max(c["resume"], c.get("written", c["resume"]))
        windows.append((c["start"], end))
        blocked.append(c["resume"] - c["start"])
    between = [(windows[i][1], windows[i + 1][0]) for i in range(len(windows) - 1)]
    during_util, during_n = utilisation(samples, windows)
    between_util, between_n = utilisation(samples, between)
    modes = {c.get("mode") for c in run["checkpoints"].values()}
    return {
        "mode": "/".join(sorted(m for m in modes if m)),
        "checkpoints": len(windows),
        "loopBlockedSeconds": round(mean(blocked), 3) if blocked else None,
        "checkpointSeconds": round(mean(b - a for a, b in windows), 3) if windows else None,
        "gpuUtilDuringCheckpoints": during_util,
        "samplesDuringCheckpoints": during_n,
        "gpuUtilBetweenCheckpoints": between_util,
        "samplesBetweenCheckpoints": between_n,
        "seconds": result.get("seconds"),
        "stepsPerSecond": result.get("stepsPerSecond"),
    }


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, names = Path(argv[0]), argv[1:]
    samples = read_samples(out / "smi.csv")
    runs = read_runs(out / "runs.log")
    figures = {name: analyse(samples, runs.get(name, {"checkpoints": {}, "result": None})) for name in names}
    print(f"GPU utilisation during checkpoints ({len(samples)} nvidia-smi samples; mid-run checkpoints only):")
    for name, f in figures.items():
        print(
            f"  {name} ({f['mode'] or 'no checkpoints'}): {f['checkpoints']} checkpoints; "
            f"loop blocked {f['loopBlockedSeconds']} s and checkpoint done after {f['checkpointSeconds']} s each; "
            f"GPU {f['gpuUtilDuringCheckpoints']}% during checkpoints ({f['samplesDuringCheckpoints']} samples), "
            f"{f['gpuUtilBetweenCheckpoints']}% between them ({f['samplesBetweenCheckpoints']} samples); "
            f"run {f['seconds']} s, {f['stepsPerSecond']} steps/s"
        )
    (out / "checkpoint-utilisation.json").write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

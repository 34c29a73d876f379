"""The study-throughput benchmark's trainer: a fixed-duration trial that speaks keel's protocol.

params: seconds (the trial's length, from this script's first line to its end), step_ms (how often
it reports), x (the sampled param), log_file (one JSON line per run).

It reports `loss` every step_ms and sleeps to a fixed deadline (so every trial lasts exactly
`seconds`, however long reporting takes), then sends done({"loss": ...}) and logs its wall-clock
start (this file's first line, before keel_sdk is imported), its end (after done() returned, just
before exit), the job, its pid and the CPU seconds it used. The interpreter's own start-up, before
the first line, is not in `start`: it counts as idle time between trials.
"""

import time

started = time.time()

import json  # noqa: E402
import os  # noqa: E402

import keel_sdk as keel  # noqa: E402

imported = time.time()
p = keel.params()
seconds = float(p.get("seconds", 2))
step_s = float(p.get("step_ms", 200)) / 1000
x = float(p.get("x", 0.0))
deadline = started + seconds
step = 0
loss = (x - 0.3) ** 2


while True:
    now = time.time()
    if now >= deadline:
        break
    time.sleep(min(step_s, deadline - now))
    step += 1
    loss = (x - 0.3) ** 2 + 1.0 / step
    keel.report(step, {"loss": loss})
    if keel.should_stop():
        break

keel.done({"loss": loss})
ended = time.time()
if p.get("log_file"):
    cpu = os.times()
    line = {
        "job": keel.job_id(),
        "pid": os.getpid(),
        "start": started,
        "imported": imported,
        "end": ended,
        "step": step,
        "cpu": cpu.user + cpu.system,
    }
    with open(p["log_file"], "a") as f:
        f.write(json.dumps(line) + "\n")

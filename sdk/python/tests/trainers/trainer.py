"""A test trainer, run by keel's real trainer side (run_with_keel.ts). params["mode"]:

  train   metrics, a folder checkpoint and a file checkpoint (both from new_checkpoint_path),
          then done() with final metrics
  refuse  checkpoints keel must refuse (outside the folder, a step not above the last), then a
          good one, then done()
  loop    trains until asked to stop (prints READY after a few steps), then saves a final
          checkpoint and exits 0; params["ignore_sigterm"]: only a stop message can stop it;
          params["async_saves"]: keel.save_async every 5 steps and for the final checkpoint
  async   save_async checkpoints (pure-Python state) at steps 1, 2, 3, then done();
          params["refuse"]: then one at step 5 and one at step 4, which keel refuses
  env     prints what the SDK reads from keel's environment, then done()
  fork    forks a child (as a DataLoader worker may) that reports on its own connection

Each thing the tests check is printed as a line `EVENT <json>`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import keel_sdk as keel


def event(**fields: object) -> None:
    print("EVENT " + json.dumps(fields), flush=True)


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def train() -> None:
    event(attached=keel.attached())
    for step in range(1, 6):
        keel.report(step, {"loss": 1.0 / step, "lr": 0.01})
    keel.heartbeat(5)
    folder = keel.new_checkpoint_path(5)
    write(os.path.join(folder, "model.bin"), b"m" * 1000)
    os.makedirs(os.path.join(folder, "optim"))
    write(os.path.join(folder, "optim", "state.bin"), b"o" * 10)
    keel.checkpoint(5, folder, {"val_loss": 0.5})
    event(acked=5, path=folder)
    keel.report(8, {"loss": 0.125})
    file = keel.new_checkpoint_path(8, "model.pt")
    write(file, b"x" * 64)
    keel.checkpoint(8, file)
    event(acked=8, path=file)
    keel.done({"val_loss": 0.25, "accuracy": 0.9})
    event(done=True)


def refuse() -> None:
    outside = os.path.join(os.path.dirname(keel.checkpoint_dir()), "outside.bin")
    write(outside, b"nope")
    for step, path in ((1, outside), (2, "../outside.bin"), (3, "missing.bin")):
        try:
            keel.checkpoint(step, path)
            event(refused=False, step=step)
        except keel.CheckpointRefused as err:
            event(refused=True, step=step, error=str(err), is_keel_error=isinstance(err, keel.KeelError))
    good = keel.new_checkpoint_path(10, "model.pt")
    write(good, b"g")
    keel.checkpoint(10, good)
    event(acked=10)
    again = keel.new_checkpoint_path(7, "model.pt")  # a step not above the last one
    write(again, b"a")
    try:
        keel.checkpoint(7, again)
        event(refused=False, step=7)
    except keel.CheckpointRefused as err:
        event(refused=True, step=7, error=str(err))
    keel.done()


def loop(ignore_sigterm: bool, async_saves: bool) -> None:
    if ignore_sigterm:
        keel.configure(install_sigterm_handler=False)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    step = 0
    saved = 0
    while not keel.should_stop():
        step += 1
        keel.report(step, {"loss": 1.0 / step})
        if async_saves and step % 5 == 0:
            keel.save_async({"step": step, "weights": [step] * 100}, step)
            saved = step
        if step == 3:
            print("READY", flush=True)
        time.sleep(0.02)
        if step > 1500:  # 30 s: the stop never came
            event(stop_never_came=True)
            sys.exit(4)
    event(stopping=step, reason=keel.stop_reason())
    if async_saves:
        # The documented pattern: the step is finished; save it (unless just saved) and flush.
        if step != saved:
            keel.save_async({"step": step, "weights": [step] * 100}, step, metrics={"loss": 1.0 / step})
        keel.done({"final_step": step})  # waits until the saves are handed off
        event(done=True, reason=keel.stop_reason())
        sys.exit(0)
    path = keel.new_checkpoint_path(step, "final.pt")
    write(path, b"f" * 32)
    keel.checkpoint(step, path, {"loss": 1.0 / step})
    event(acked=step, reason=keel.stop_reason())
    keel.done({"final_step": step})


def async_saves(refuse: bool) -> None:
    for step in (1, 2, 3):
        path = keel.save_async({"step": step, "weights": [0.5 * step] * 10}, step, metrics={"loss": 1.0 / step})
        event(submitted=step, path=path)
    if refuse:
        keel.save_async({"step": 5}, 5)
        keel.save_async({"step": 4}, 4)  # not above 5: keel refuses it, in the background
        try:
            keel.done({"ok": 1})
            event(refused=False)
        except keel.AsyncSaveError as err:
            event(refused=True, step=err.step, error=str(err), cause=type(err.__cause__).__name__)
    keel.done({"ok": 1})  # the error was raised once: done() goes through now
    event(done=True)


def env() -> None:
    resume = keel.resume_from()
    event(
        params=keel.params(),
        job_id=keel.job_id(),
        attempt=keel.attempt(),
        checkpoint_dir=keel.checkpoint_dir(),
        resume=None if resume is None else {"path": resume.path, "step": resume.step},
        attached=keel.attached(),
    )
    if resume is not None:
        with open(resume.path, "rb") as f:
            event(resumed_bytes=len(f.read()))
        path = keel.new_checkpoint_path(resume.step + 1, "model.pt")
        write(path, b"r")
        keel.checkpoint(resume.step + 1, path)
        event(acked=resume.step + 1)
    keel.done({"ok": 1})


def fork() -> None:
    keel.report(1, {"parent": 1.0})
    pid = os.fork()
    if pid == 0:  # the child: its own connection, never the parent's socket
        keel.report(2, {"child": 2.0})
        keel.done()  # waits until keel has read its lines
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    event(child_exit=os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status)
    path = keel.new_checkpoint_path(3, "model.pt")
    write(path, b"p")
    keel.checkpoint(3, path)
    event(acked=3)
    keel.done({"parent_done": 1.0})


def main() -> None:
    mode = keel.params().get("mode")
    if mode == "train":
        train()
    elif mode == "refuse":
        refuse()
    elif mode == "loop":
        loop(bool(keel.params().get("ignore_sigterm")), bool(keel.params().get("async_saves")))
    elif mode == "async":
        async_saves(bool(keel.params().get("refuse")))
    elif mode == "env":
        env()
    elif mode == "fork":
        fork()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()

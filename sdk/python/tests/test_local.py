"""The SDK without keel (no KEEL_CONTROL): the environment it reads, local no-ops, checks on what
it would send, new_checkpoint_path, and SIGTERM handling (in subprocesses, to keep pytest's own),
including the documented stop pattern with a plain save and with save_async."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import keel_sdk as keel
from conftest import trainer_env

# --- the environment -------------------------------------------------------------------------


def test_params_from_keel_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_PARAMS", '{"lr": 0.01, "layers": [64, 64], "name": "ü"}')
    assert keel.params() == {"lr": 0.01, "layers": [64, 64], "name": "ü"}


def test_params_empty_when_absent_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keel.params() == {}
    monkeypatch.setenv("KEEL_PARAMS", "")
    assert keel.params() == {}


def test_params_must_be_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_PARAMS", "[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        keel.params()


def test_job_and_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keel.job_id() is None
    assert keel.attempt() == 1
    monkeypatch.setenv("KEEL_JOB_ID", "job-7")
    monkeypatch.setenv("KEEL_ATTEMPT", "3")
    assert keel.job_id() == "job-7"
    assert keel.attempt() == 3


def test_resume_from(monkeypatch: pytest.MonkeyPatch) -> None:
    assert keel.resume_from() is None
    # keel passes both variables empty on a fresh start
    monkeypatch.setenv("KEEL_RESUME_FROM", "")
    monkeypatch.setenv("KEEL_RESUME_STEP", "")
    assert keel.resume_from() is None
    monkeypatch.setenv("KEEL_RESUME_FROM", "/restored/step-40/model.pt")
    assert keel.resume_from() is None  # no step: not a resume point
    monkeypatch.setenv("KEEL_RESUME_STEP", "40")
    point = keel.resume_from()
    assert point == keel.ResumePoint("/restored/step-40/model.pt", 40)
    assert point is not None and point.path == "/restored/step-40/model.pt" and point.step == 40


def test_checkpoint_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "ckpts" / "attempt-1"
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(target))
    assert keel.checkpoint_dir() == str(target)
    assert target.is_dir()


def test_checkpoint_dir_defaults_to_checkpoints_in_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert keel.checkpoint_dir() == str(tmp_path / "checkpoints")
    assert (tmp_path / "checkpoints").is_dir()


# --- local no-ops ----------------------------------------------------------------------------


def test_without_keel_every_call_is_local(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEL_SDK_SIGTERM", "0")  # should_stop() must not touch pytest's SIGTERM
    assert keel.attached() is False
    keel.report(3, {"loss": 0.5, "acc": 1})
    keel.heartbeat()
    keel.heartbeat(4)
    started = time.monotonic()
    keel.checkpoint(4, "does-not-matter-locally.pt", {"val": 1.0})
    assert time.monotonic() - started < 0.5
    assert keel.should_stop() is False
    assert keel.stop_reason() is None
    keel.done({"val_loss": 0.2})
    err = capsys.readouterr().err
    assert 'step 3: {"loss": 0.5, "acc": 1.0}' in err
    assert 'done: {"val_loss": 0.2}' in err


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, float("nan")])
def test_non_finite_metric_raises_naming_it(bad: float) -> None:
    with pytest.raises(ValueError, match="'val_loss'"):
        keel.report(1, {"loss": 0.1, "val_loss": bad})
    with pytest.raises(ValueError, match="'val_loss'"):
        keel.checkpoint(1, "x.pt", {"val_loss": bad})
    with pytest.raises(ValueError, match="'val_loss'"):
        keel.done({"val_loss": bad})


def test_metric_checks() -> None:
    with pytest.raises(TypeError, match="'name'"):
        keel.report(1, {"name": "resnet"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="metric name"):
        keel.report(1, {"": 1.0})
    with pytest.raises(ValueError, match="metric name"):
        keel.report(1, {"x" * 201: 1.0})
    with pytest.raises(ValueError, match="at most 256"):
        keel.report(1, {f"m{i}": 1.0 for i in range(257)})
    with pytest.raises(ValueError, match="'huge'"):
        keel.report(1, {"huge": 10**400})


def test_step_checks() -> None:
    with pytest.raises(ValueError, match="step"):
        keel.report(-1, {"loss": 1.0})
    with pytest.raises(TypeError, match="step"):
        keel.report(1.5, {"loss": 1.0})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bool"):
        keel.heartbeat(True)
    with pytest.raises(ValueError, match="step"):
        keel.checkpoint(2**53, "x.pt")
    with pytest.raises(ValueError, match="path"):
        keel.checkpoint(1, "")


# --- new_checkpoint_path ---------------------------------------------------------------------


def test_new_checkpoint_path_is_a_new_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(tmp_path))
    first = keel.new_checkpoint_path(500)
    assert first == str(tmp_path / "step-500")
    assert os.path.isdir(first) and os.listdir(first) == []
    # the same step again (a refused or retried checkpoint): never the folder already written
    second = keel.new_checkpoint_path(500)
    third = keel.new_checkpoint_path(500)
    assert second == str(tmp_path / "step-500-2")
    assert third == str(tmp_path / "step-500-3")
    assert os.path.isdir(second) and os.path.isdir(third)


def test_new_checkpoint_path_with_a_file_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(tmp_path))
    path = keel.new_checkpoint_path(7, "model.pt")
    assert path == str(tmp_path / "step-7" / "model.pt")
    assert os.path.isdir(os.path.dirname(path)) and not os.path.exists(path)
    assert keel.new_checkpoint_path(7, "model.pt") == str(tmp_path / "step-7-2" / "model.pt")


def test_new_checkpoint_path_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(tmp_path))
    for bad in ("../x.pt", "a/b.pt", "..", "."):
        with pytest.raises(ValueError, match="plain file name"):
            keel.new_checkpoint_path(1, bad)
    with pytest.raises(ValueError):
        keel.new_checkpoint_path(-1)
    assert os.listdir(tmp_path) == []


def test_new_checkpoint_path_is_safe_across_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(tmp_path))
    paths: list = []
    threads = [threading.Thread(target=lambda: paths.append(keel.new_checkpoint_path(9))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(paths)) == 8


# --- SIGTERM (each in its own process) -------------------------------------------------------


def run_script(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=trainer_env(env), timeout=20
    )


def test_sigterm_sets_the_stop_flag_and_chains_the_previous_handler() -> None:
    done = run_script(
        """
import os, signal, time
import keel_sdk as keel
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
assert keel.should_stop() is False
os.kill(os.getpid(), signal.SIGTERM)
for _ in range(100):
    if keel.should_stop():
        break
    time.sleep(0.01)
print(keel.stop_reason(), seen == [signal.SIGTERM])
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SIGTERM", "True"]


def test_sigterm_handler_opt_out_by_env() -> None:
    done = run_script(
        """
import os, signal, time
import keel_sdk as keel
keel.should_stop()
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(2)
print("survived")
""",
        KEEL_SDK_SIGTERM="0",
    )
    assert done.returncode == -signal.SIGTERM
    assert "survived" not in done.stdout


def test_sigterm_handler_opt_out_by_configure_restores_the_previous_one() -> None:
    done = run_script(
        """
import os, signal, time
import keel_sdk as keel
mine = lambda signum, frame: print("mine")
signal.signal(signal.SIGTERM, mine)
keel.should_stop()
assert signal.getsignal(signal.SIGTERM) is not mine
keel.configure(install_sigterm_handler=False)
assert signal.getsignal(signal.SIGTERM) is mine
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.1)
print(keel.should_stop())
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mine", "False"]


def test_outside_keel_sigterm_still_kills_a_trainer_that_never_polls() -> None:
    done = run_script(
        """
import os, signal, time
import keel_sdk as keel
keel.report(1, {"loss": 1.0})
keel.checkpoint(1, "x.pt")
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(2)
print("survived")
"""
    )
    assert done.returncode == -signal.SIGTERM
    assert "survived" not in done.stdout


def test_first_call_from_a_thread_installs_the_handler_on_the_main_threads_next_call() -> None:
    done = run_script(
        """
import os, signal, threading, time
import keel_sdk as keel
t = threading.Thread(target=keel.should_stop)
t.start(); t.join()
print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
keel.should_stop()
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(0.1)
print(keel.stop_reason())
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "SIGTERM"]


# The documented pattern (README, "Stopping and SIGTERM"): poll should_stop() once a step; on a
# stop, finish the step, save it (sync, or save_async and then done() waits for it), exit 0.
SIGTERM_PATTERN = """
import os, pickle, sys, time
import keel_sdk as keel
ASYNC = sys.argv[1] == "async"

def save(step):
    state = {"step": step, "weights": [float(step)] * 1000}
    if ASYNC:
        keel.save_async(state, step)
    else:
        path = keel.new_checkpoint_path(step, "state.pkl")
        with open(path, "wb") as f:
            pickle.dump(state, f)
        keel.checkpoint(step, path)

step = saved = 0
while not keel.should_stop():
    step += 1
    time.sleep(0.01)  # a training step
    if step % 10 == 0:
        save(step)
        saved = step
    if step == 3:
        print("READY", flush=True)
    if step > 3000:
        sys.exit(4)  # the stop never came
if step != saved:
    save(step)
keel.done({"final_step": step})
print("STOPPED", step, keel.stop_reason(), flush=True)
sys.exit(0)
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_sigterm_pattern_saves_the_last_step_and_exits_0(tmp_path: Path, mode: str) -> None:
    trainer = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_PATTERN, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=trainer_env({"KEEL_CHECKPOINT_DIR": str(tmp_path)}),
    )
    try:
        assert trainer.stdout is not None
        assert trainer.stdout.readline().strip() == "READY"
        time.sleep(0.15)  # mid-run: a few more steps, maybe a save
        trainer.send_signal(signal.SIGTERM)
        out, err = trainer.communicate(timeout=30)
    finally:
        trainer.kill()
    assert trainer.returncode == 0, err
    _, last, reason = out.split()
    assert reason == "SIGTERM"
    with open(tmp_path / f"step-{last}" / "state.pkl", "rb") as f:
        assert pickle.load(f) == {"step": int(last), "weights": [float(last)] * 1000}
    saved = sorted(int(p.name[len("step-") :]) for p in tmp_path.glob("step-*"))
    assert saved[-1] == int(last) and all(s % 10 == 0 for s in saved[:-1])

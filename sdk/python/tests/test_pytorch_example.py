"""The PyTorch example trainer (examples/pytorch/train.py).

Without torch: its params are checked before torch is imported, a missing torch is a clear exit 2,
and its study and job specs name params the trainer accepts. These always run (torch is blocked
in the subprocess, so they run the same where torch is installed).

With torch (skipped when `import torch` fails): the example runs on the CPU under keel's real
trainer side (run_with_keel.ts, launchTrainer: control socket, staging by hard link, ack, stop)
for 300 steps, and a run that crashed or was stopped, resumed from the checkpoint keel staged,
ends with the same weights (sha256) and final metrics as an uninterrupted run. The same with
save_async (checkpoints written and handed off in keel_sdk's background thread).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from conftest import REPO, SDK_SRC, KeelRun, run_harness, trainer_env

EXAMPLE = REPO / "examples" / "pytorch"
TRAIN = EXAMPLE / "train.py"

# Runs train.py with `import torch` failing, whether or not torch is installed.
WITHOUT_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_without_torch(tmp_path: Path, params: Dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    env = trainer_env({"KEEL_PARAMS": json.dumps(params), "KEEL_CHECKPOINT_DIR": str(tmp_path / "checkpoints")})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, str(TRAIN), *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )


def load_train_module() -> Any:
    spec = importlib.util.spec_from_file_location("pytorch_example_train", TRAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports keel_sdk, not torch
    return module


# --- always run --------------------------------------------------------------------------------


def test_without_torch_it_exits_2_and_says_to_install_torch(tmp_path: Path) -> None:
    done = run_without_torch(tmp_path, {"steps": 10})
    assert done.returncode == 2, done.stderr
    assert "this example needs PyTorch" in done.stderr
    assert "pip install torch" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not any((tmp_path / "checkpoints").glob("step-*"))  # nothing was written


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"learning_rat": 0.1}, "unknown param 'learning_rat'"),
        ({"lr": 0.1, "learning_rate": 0.2}, "'lr' and 'learning_rate' are the same param: give one"),
        ({"dropout": 1.0}, "dropout must be in [0.0, 1.0), not 1.0"),
        ({"width": 0}, "width must be from 1 to 16384, not 0"),
        ({"steps": 100, "epochs": 2}, "give steps or epochs, not both"),
        ({"dataset": "mnist"}, "dataset must be 'spirals' or 'digits'"),
        ({"learning_rate": "fast"}, "learning_rate must be a finite number"),
        ({"save_async": "yes"}, "save_async must be true or false, not 'yes'"),
    ],
)
def test_bad_params_exit_2_naming_the_param_before_torch_is_needed(
    tmp_path: Path, params: Dict[str, Any], named: str
) -> None:
    done = run_without_torch(tmp_path, params)
    assert done.returncode == 2, done.stderr
    assert f"pytorch: cannot start: {named}" in done.stderr
    assert "PyTorch" not in done.stderr  # the params are checked first


def test_an_unknown_option_exits_2_with_the_usage(tmp_path: Path) -> None:
    done = run_without_torch(tmp_path, {}, "--save-asynch")
    assert done.returncode == 2
    assert "usage: train.py [-h] [--save-async]" in done.stderr and "--save-asynch" in done.stderr


def test_the_study_and_job_specs_name_params_the_trainer_accepts() -> None:
    train = load_train_module()
    study = json.loads((EXAMPLE / "study.json").read_text())
    job = json.loads((EXAMPLE / "job.json").read_text())
    for spec in (study["trial"], job):
        assert spec["command"] == ["python3", "examples/pytorch/train.py"]
        assert spec["env"]["PYTHONPATH"] == "sdk/python/src"
        assert (REPO / spec["command"][1]).is_file()
        assert (REPO / spec["env"]["PYTHONPATH"] / "keel_sdk" / "__init__.py").is_file()
        train.parse_params(spec["params"])
    space = study["space"]
    assert set(space) == {"learning_rate", "width", "dropout"}
    assert space["learning_rate"]["log"] is True
    # each corner of the search space, merged over the template's params as a study does
    corners: List[Dict[str, Any]] = [{}]
    for name, d in space.items():
        corners = [{**c, name: v} for c in corners for v in (d["low"], d["high"])]
    for corner in corners:
        checked = train.parse_params({**study["trial"]["params"], **corner})
        assert {k: checked[k] for k in corner} == corner
    # the objective is a metric the trainer reports at every evaluation (what ASHA's rungs read)
    assert study["objective"]["metric"] in ("val_acc", "val_loss")
    assert study["pruner"]["minResource"] % study["trial"]["params"]["eval_every"] == 0


def test_checkpoint_utilisation_reads_gpu_check_output(tmp_path: Path) -> None:
    # What gpu_check.sh leaves: nvidia-smi samples every 100 ms, and two runs' timing lines. The
    # plain saves idle the GPU for 2 s each; save_async blocks the loop 0.2 s, written after 2 s.
    t0 = 1_700_000_000.0
    stamp = lambda t: datetime.fromtimestamp(t).strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]  # noqa: E731
    sync_idle = [(10.0, 12.0), (20.0, 22.0)]
    async_idle = [(40.0, 40.2), (50.0, 50.2)]
    rows = ["timestamp, utilization.gpu [%], memory.used [MiB], power.draw [W]"]
    for i in range(700):
        t = i / 10
        idle = any(a <= t < b for a, b in sync_idle + async_idle)
        rows.append(f"{stamp(t0 + t)}, {0 if idle else 90}, 1000, 300.0")
    (tmp_path / "smi.csv").write_text("\n".join(rows) + "\n")

    def timing(name: str, **fields: Any) -> str:
        return f"{stamp(t0)} {name} pytorch: checkpoint-timing {json.dumps(fields)}"

    result = '{"final": {"step": 300}, "weightsSha256": "x", "device": "cuda", "seconds": 31.0, "stepsPerSecond": 9.7}'
    lines = [
        timing("big", step=100, mode="sync", start=t0 + 10, resume=t0 + 12),
        timing("big", step=200, mode="sync", start=t0 + 20, resume=t0 + 22),
        timing("big", step=300, mode="sync", start=t0 + 30, resume=t0 + 32),  # the last: not counted
        f"{stamp(t0)} big {result}",
        timing("big-async", step=100, mode="async", start=t0 + 40, resume=t0 + 40.2),
        timing("big-async", step=100, mode="async", written=t0 + 42),
        timing("big-async", step=200, mode="async", start=t0 + 50, resume=t0 + 50.2),
        timing("big-async", step=200, mode="async", written=t0 + 52),
        f"{stamp(t0)} big-async {result.replace('31.0', '27.0')}",
    ]
    (tmp_path / "runs.log").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "checkpoint_utilisation.py"), str(tmp_path), "big", "big-async"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "big (sync): 2 checkpoints; loop blocked 2.0 s" in done.stdout
    figures = json.loads((tmp_path / "checkpoint-utilisation.json").read_text())
    plain, background = figures["big"], figures["big-async"]
    assert (plain["checkpoints"], plain["loopBlockedSeconds"], plain["checkpointSeconds"]) == (2, 2.0, 2.0)
    assert plain["gpuUtilDuringCheckpoints"] < 10 and plain["gpuUtilBetweenCheckpoints"] > 85  # edges blur
    assert [background[k] for k in ("checkpoints", "loopBlockedSeconds", "checkpointSeconds")] == [2, 0.2, 2.0]
    assert background["gpuUtilDuringCheckpoints"] > 75 and background["gpuUtilBetweenCheckpoints"] > 85
    assert (plain["seconds"], background["seconds"]) == (31.0, 27.0)


# --- with torch, under keel --------------------------------------------------------------------

PARAMS = {
    "seed": 7,
    "steps": 300,
    "width": 64,
    "checkpoint_every": 100,
    "eval_every": 50,
    "report_every": 20,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def torch_here() -> None:
    pytest.importorskip("torch", reason="torch is not installed: the PyTorch example's runs are skipped")


@pytest.fixture
def folders() -> Iterator[Any]:
    """Attempt folders with short paths (a Unix socket's path must stay under 108 bytes)."""
    base = tempfile.gettempdir()
    root = Path(tempfile.mkdtemp(prefix="kpt-", dir=base if len(base) <= 40 else "/tmp"))
    count = iter(range(1, 100))
    yield lambda: root / f"a{next(count)}"
    shutil.rmtree(root, ignore_errors=True)


def run_example(node: str, attempt_dir: Path, params: Dict[str, Any], *args: str, **options: Any) -> KeelRun:
    config = {
        "command": [sys.executable, str(TRAIN), *args],
        "attemptDir": str(attempt_dir),
        "params": params,
        # as a keel job runs it (job.json); one CPU thread: the same bits on every run here
        "env": {"PYTHONPATH": str(SDK_SRC), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        "timeoutMs": 120_000,
        "progressTimeoutMs": 60_000,
        **options,
    }
    return run_harness(node, config, timeout=180)


def result_line(run: KeelRun) -> Dict[str, Any]:
    lines = [line for line in run["log"].splitlines() if line.startswith('{"final"')]
    assert len(lines) == 1, run["log"]
    return json.loads(lines[0])


def reported(run: KeelRun) -> Dict[int, str]:
    """step -> the metrics the trainer reported at that step, as it logged them (`step N: {...}`)."""
    lines = (line.split(": ", 1) for line in run["log"].splitlines() if line.startswith("step "))
    return {int(head[len("step ") :]): metrics for head, metrics in lines}


def staged_steps(run: KeelRun) -> List[int]:
    return [s["step"] for s in run["staged"]]


def resume_from(run: KeelRun) -> Dict[str, Any]:
    """keel's newest staged copy of a checkpoint, as a later attempt would get it back."""
    newest = run["staged"][-1]
    return {"path": newest["dir"], "step": newest["step"]}


@pytest.fixture(scope="module")
def uninterrupted(torch_here: None, node: str) -> Iterator[KeelRun]:
    root = Path(tempfile.mkdtemp(prefix="kpt-", dir="/tmp"))
    try:
        yield run_example(node, root / "a", PARAMS)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_under_keel_it_trains_reports_and_checkpoints(uninterrupted: KeelRun) -> None:
    run = uninterrupted
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert "pytorch: device cpu" in run["log"]
    assert staged_steps(run) == [100, 200, 300]
    for staged in run["staged"]:
        assert staged["kind"] == "directory" and staged["method"] == "link"
        assert sorted(f["path"] for f in staged["files"]) == ["meta.json", "state.pt"]
    assert run["refused"] == []
    assert run["step"] == 300
    assert set(run["metrics"]) == {"loss", "lr", "val_loss", "val_acc"}
    assert run["metrics"]["lr"] == pytest.approx(3e-3)

    result = result_line(run)
    final = result["final"]
    assert set(final) == {"step", "train_loss", "train_acc", "val_loss", "val_acc"}
    assert run["finalMetrics"] == {**run["metrics"], **final}  # done()'s metrics reached keel
    assert final["step"] == 300
    steps = sorted(reported(run))
    assert steps == sorted(set(range(20, 301, 20)) | set(range(50, 301, 50))), steps
    assert final["val_acc"] > 0.5  # 5 classes: chance is 0.2; it learned
    assert final["train_loss"] < 1.0
    # the staged last checkpoint holds the very weights the run ended with
    meta = json.loads((Path(run["staged"][-1]["dir"]) / "meta.json").read_text())
    assert meta["step"] == 300 and meta["weightsSha256"] == result["weightsSha256"]


def test_a_crash_resumed_from_keels_staged_checkpoint_ends_bit_identical(
    uninterrupted: KeelRun, node: str, folders: Any
) -> None:
    crashed = run_example(node, folders(), {**PARAMS, "fail_at_step": 150})
    assert (crashed["outcome"], crashed["exitCode"]) == ("crashed", 3), crashed["log"]
    assert "injected failure at step 150" in crashed["log"]
    assert staged_steps(crashed) == [100]

    resumed = run_example(node, folders(), PARAMS, attempt=2, resume=resume_from(crashed))
    assert (resumed["outcome"], resumed["exitCode"]) == ("completed", 0), resumed["log"]
    assert "resumed from" in resumed["log"] and "at step 100" in resumed["log"]
    assert staged_steps(resumed) == [200, 300]
    assert result_line(resumed)["weightsSha256"] == result_line(uninterrupted)["weightsSha256"]
    assert result_line(resumed)["final"] == result_line(uninterrupted)["final"]
    assert resumed["finalMetrics"] == uninterrupted["finalMetrics"]
    # every metric reported after the resume, as the uninterrupted run reported it
    assert reported(resumed) == {step: m for step, m in reported(uninterrupted).items() if step > 100}


@pytest.mark.parametrize("stop_with", ["keel", "sigterm"])
def test_a_stop_mid_run_saves_and_the_resumed_run_ends_bit_identical(
    uninterrupted: KeelRun, node: str, folders: Any, stop_with: str
) -> None:
    # Slow steps, so the stop lands mid-run: just after step 150 (an evaluation, no checkpoint),
    # with a report window partly filled.
    slow = {**PARAMS, "step_delay_ms": 20}
    stopped = run_example(node, folders(), slow, stopOn="step 150: ", stopWith=stop_with, stopReason="preempt")
    assert stopped["exitCode"] == 0, stopped["log"]
    assert stopped["outcome"] == ("stopped" if stop_with == "keel" else "completed")
    result = result_line(stopped)
    assert result["stopped"] == ("preempt" if stop_with == "keel" else "SIGTERM")
    steps = staged_steps(stopped)
    assert steps[0] == 100 and len(steps) == 2 and 150 <= steps[1] < 200, steps
    assert result["final"]["step"] == steps[1] == stopped["finalMetrics"]["step"]

    resumed = run_example(node, folders(), PARAMS, attempt=2, resume=resume_from(stopped))
    assert (resumed["outcome"], resumed["exitCode"]) == ("completed", 0), resumed["log"]
    assert staged_steps(resumed) == [200, 300]
    assert result_line(resumed)["weightsSha256"] == result_line(uninterrupted)["weightsSha256"]
    assert result_line(resumed)["final"] == result_line(uninterrupted)["final"]
    assert resumed["finalMetrics"] == uninterrupted["finalMetrics"]
    # every metric reported after the resume, as the uninterrupted run reported it: the first
    # training-loss window began before the stop, so it came back from the checkpoint
    assert reported(resumed) == {step: m for step, m in reported(uninterrupted).items() if step > steps[1]}


# --- with torch, save_async ----------------------------------------------------------------------

ASYNC = {**PARAMS, "save_async": True}


def test_with_save_async_it_trains_the_same_and_every_checkpoint_is_staged(
    uninterrupted: KeelRun, node: str, folders: Any
) -> None:
    run = run_example(node, folders(), ASYNC)
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    for step in (100, 200, 300):
        assert f"checkpoint step-{step}: snapshot " in run["log"]
        assert f"checkpoint step-{step} written in the background" in run["log"]
    assert staged_steps(run) == [100, 200, 300]
    for staged in run["staged"]:
        assert staged["kind"] == "directory" and staged["method"] == "link"
        assert sorted(f["path"] for f in staged["files"]) == ["meta.json", "state.pt"]
        assert json.loads((Path(staged["dir"]) / "meta.json").read_text())["step"] == staged["step"]
    # saving in the background changes nothing in the training: the same bits as the plain saves
    assert result_line(run)["weightsSha256"] == result_line(uninterrupted)["weightsSha256"]
    assert result_line(run)["final"] == result_line(uninterrupted)["final"]
    assert reported(run) == reported(uninterrupted)
    assert run["finalMetrics"] == uninterrupted["finalMetrics"]
    # the snapshot of step 300, written in the background, holds the weights the run ended with
    meta = json.loads((Path(run["staged"][-1]["dir"]) / "meta.json").read_text())
    assert meta["weightsSha256"] == result_line(run)["weightsSha256"]
    state_files = [Path(s["dir"]) / "state.pt" for s in run["staged"]]
    assert [s for s in state_files if s.stat().st_size == 0] == []


def test_with_save_async_a_crash_resumes_bit_identical(uninterrupted: KeelRun, node: str, folders: Any) -> None:
    # --save-async on the command line is the same as the param
    crashed = run_example(node, folders(), {**PARAMS, "fail_at_step": 150}, "--save-async")
    assert (crashed["outcome"], crashed["exitCode"]) == ("crashed", 3), crashed["log"]
    assert staged_steps(crashed) == [100]  # handed off in the background before the crash
    resumed = run_example(node, folders(), PARAMS, "--save-async", attempt=2, resume=resume_from(crashed))
    assert (resumed["outcome"], resumed["exitCode"]) == ("completed", 0), resumed["log"]
    assert staged_steps(resumed) == [200, 300]
    assert result_line(resumed)["weightsSha256"] == result_line(uninterrupted)["weightsSha256"]
    assert resumed["finalMetrics"] == uninterrupted["finalMetrics"]


def test_with_save_async_a_sigterm_saves_and_the_resumed_run_ends_bit_identical(
    uninterrupted: KeelRun, node: str, folders: Any
) -> None:
    slow = {**ASYNC, "step_delay_ms": 20}
    stopped = run_example(node, folders(), slow, stopOn="step 150: ", stopWith="sigterm")
    assert (stopped["exitCode"], stopped["outcome"]) == (0, "completed"), stopped["log"]
    assert result_line(stopped)["stopped"] == "SIGTERM"
    steps = staged_steps(stopped)
    assert steps[0] == 100 and len(steps) == 2 and 150 <= steps[1] < 200, steps
    resumed = run_example(node, folders(), ASYNC, attempt=2, resume=resume_from(stopped))
    assert (resumed["outcome"], resumed["exitCode"]) == ("completed", 0), resumed["log"]
    assert result_line(resumed)["weightsSha256"] == result_line(uninterrupted)["weightsSha256"]
    assert resumed["finalMetrics"] == uninterrupted["finalMetrics"]

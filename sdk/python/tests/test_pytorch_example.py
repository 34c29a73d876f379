"""The PyTorch example trainer (examples/pytorch/train.py).

Without torch: its params are checked before torch is imported, a missing torch is a clear exit 2,
and its study and job specs name params the trainer accepts. These always run (torch is blocked
in the subprocess, so they run the same where torch is installed).

With torch (skipped when `import torch` fails): the example runs on the CPU under keel's real
trainer side (run_with_keel.ts, launchTrainer: control socket, staging by hard link, ack, stop)
for 300 steps, and a run that crashed or was stopped, resumed from the checkpoint keel staged,
ends with the same weights (sha256) and final metrics as an uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from conftest import REPO, SDK, KeelRun, run_harness, trainer_env

EXAMPLE = REPO / "examples" / "pytorch"
TRAIN = EXAMPLE / "train.py"

# Runs train.py with `import torch` failing, whether or not torch is installed.
WITHOUT_TORCH = (
    "import runpy, sys; sys.modules['torch'] = None; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_without_torch(tmp_path: Path, params: Dict[str, Any]) -> subprocess.CompletedProcess:
    env = trainer_env({"KEEL_PARAMS": json.dumps(params), "KEEL_CHECKPOINT_DIR": str(tmp_path / "checkpoints")})
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, str(TRAIN)],
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
    ],
)
def test_bad_params_exit_2_naming_the_param_before_torch_is_needed(
    tmp_path: Path, params: Dict[str, Any], named: str
) -> None:
    done = run_without_torch(tmp_path, params)
    assert done.returncode == 2, done.stderr
    assert f"pytorch: cannot start: {named}" in done.stderr
    assert "PyTorch" not in done.stderr  # the params are checked first


def test_the_study_and_job_specs_name_params_the_trainer_accepts() -> None:
    train = load_train_module()
    study = json.loads((EXAMPLE / "study.json").read_text())
    job = json.loads((EXAMPLE / "job.json").read_text())
    for spec in (study["trial"], job):
        assert spec["command"] == ["python3", "examples/pytorch/train.py"]
        assert spec["env"]["PYTHONPATH"] == "sdk/python"
        assert (REPO / spec["command"][1]).is_file() and (REPO / spec["env"]["PYTHONPATH"] / "keel_sdk.py").is_file()
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


def run_example(node: str, attempt_dir: Path, params: Dict[str, Any], **options: Any) -> KeelRun:
    config = {
        "command": [sys.executable, str(TRAIN)],
        "attemptDir": str(attempt_dir),
        "params": params,
        # as a keel job runs it (job.json); one CPU thread: the same bits on every run here
        "env": {"PYTHONPATH": str(SDK), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
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

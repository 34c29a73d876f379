"""keel_sdk.lightning.KeelCallback in a real PyTorch Lightning run under keel's real trainer side
(tests/trainers/lightning_trainer.py through run_with_keel.ts). Skipped when lightning (or torch)
is not installed; their absence is tested in test_save_async.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

from conftest import TESTS, KeelRun, run_framework_trainer, staged_steps

pytest.importorskip("torch", reason="torch is not installed: the callback's runs are skipped")
pytest.importorskip("lightning.pytorch", reason="lightning is not installed: the callback's runs are skipped")

import torch  # noqa: E402

TRAINER = TESTS / "trainers" / "lightning_trainer.py"


def run_lightning(node: str, attempt_dir: Path, params: Dict[str, Any], **options: Any) -> KeelRun:
    return run_framework_trainer(node, TRAINER, attempt_dir, params, **options)



def saved_step(staged: Dict[str, Any]) -> int:
    ckpt = torch.load(Path(staged["dir"]) / staged["name"], map_location="cpu", weights_only=False)
    return int(ckpt["global_step"])


# Epochs of 8 batches: checkpoints every 8 steps fall on epoch ends, where Lightning resumes exactly.
PARAMS = {"max_steps": 32, "checkpoint_every": 8, "report_every": 4}


@pytest.fixture(scope="module")
def uninterrupted(node: str, module_tmp: Path) -> KeelRun:
    return run_lightning(node, module_tmp / "a", PARAMS)


def test_metrics_and_checkpoints_reach_keel(uninterrupted: KeelRun) -> None:
    run = uninterrupted
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert staged_steps(run) == [8, 16, 24, 32]  # every 8 steps; the last one not saved twice at train end
    for staged in run["staged"]:
        assert staged["kind"] == "file" and staged["name"] == "model.ckpt" and staged["method"] == "link"
        assert saved_step(staged) == staged["step"]  # trainer.save_checkpoint wrote that step's state
    assert run["refused"] == []
    assert set(run["metrics"]) == {"train_loss"}  # self.log(...) went to keel.report()
    assert run.event("fit_returned")["fit_returned"] == 32
    assert run["finalMetrics"]["final_step"] == 32


def test_resume_ckpt_path_resumes_from_keels_checkpoint_exactly(uninterrupted: KeelRun, node: str, module_tmp: Path) -> None:
    at16 = uninterrupted["staged"][1]
    resume = {"path": str(Path(at16["dir"]) / at16["name"]), "step": 16}
    run = run_lightning(node, module_tmp / "b", PARAMS, attempt=2, resume=resume)
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert run.event("resume")["resume"] == resume["path"]
    assert run.event("start_step")["start_step"] == 16
    assert staged_steps(run) == [24, 32]
    assert run.event("fit_returned")["weights"] == uninterrupted.event("fit_returned")["weights"]


@pytest.mark.parametrize("stop_with", ["keel", "sigterm"])
def test_a_stop_saves_the_step_reached_and_exits_0(node: str, module_tmp: Path, stop_with: str) -> None:
    slow = {"max_steps": 100_000, "checkpoint_every": 0, "step_delay_ms": 50}
    options = {"stopOn": "READY", "stopWith": stop_with, "stopReason": "preempt"}
    run = run_lightning(node, module_tmp / f"stop-{stop_with}", slow, **options)
    assert (run["exitCode"], run["signal"]) == (0, None), (run["outcome"], run["timedOut"], run["log"])
    assert run["outcome"] == ("stopped" if stop_with == "keel" else "completed")
    # On SIGTERM Lightning ends fit() with its SIGTERMException (exit 0) after the callback saved.
    # keel's stop message alone makes fit() return; it may be read a batch before the signal lands.
    ended = next(e for e in run.events if "sigterm_exception" in e or "fit_returned" in e)
    if stop_with == "sigterm":
        assert "sigterm_exception" in ended, run["log"]
    last = ended["step"] if "sigterm_exception" in ended else ended["fit_returned"]
    assert ended["reason"] == ("preempt" if stop_with == "keel" else "SIGTERM")
    assert staged_steps(run) == [last] and last >= 3
    assert saved_step(run["staged"][0]) == last

"""keel_sdk.huggingface.KeelCallback in a real transformers Trainer run under keel's real trainer
side (tests/trainers/hf_trainer.py through run_with_keel.ts). Skipped when transformers (or torch)
is not installed; their absence is tested in test_save_async.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest

from conftest import TESTS, KeelRun, run_framework_trainer, staged_steps

pytest.importorskip("torch", reason="torch is not installed: the callback's runs are skipped")
pytest.importorskip("transformers", reason="transformers is not installed: the callback's runs are skipped")

TRAINER = TESTS / "trainers" / "hf_trainer.py"
# What the Trainer writes into checkpoint-<N> for a plain torch module.
HF_FILES = {
    "model.safetensors",
    "optimizer.pt",
    "rng_state.pth",
    "scheduler.pt",
    "trainer_state.json",
    "training_args.bin",
}


def run_hf(node: str, attempt_dir: Path, params: Dict[str, Any], **options: Any) -> KeelRun:
    return run_framework_trainer(node, TRAINER, attempt_dir, params, **options)



def trainer_state(staged: Dict[str, Any]) -> Dict[str, Any]:
    return json.loads((Path(staged["dir"]) / "trainer_state.json").read_text())


PARAMS = {"max_steps": 30, "save_steps": 10, "logging_steps": 5}


@pytest.fixture(scope="module")
def uninterrupted(node: str, module_tmp: Path) -> KeelRun:
    return run_hf(node, module_tmp / "a", PARAMS)


def test_logs_and_checkpoint_folders_reach_keel(uninterrupted: KeelRun) -> None:
    run = uninterrupted
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert staged_steps(run) == [10, 20, 30]
    for staged in run["staged"]:
        # the checkpoint-<N> folder the Trainer wrote, staged whole by hard link
        assert staged["kind"] == "directory" and staged["method"] == "link"
        assert {f["path"] for f in staged["files"]} == HF_FILES
        assert trainer_state(staged)["global_step"] == staged["step"]
    assert run["refused"] == []
    assert {"loss", "learning_rate", "grad_norm", "epoch", "train_loss"} <= set(run["metrics"])  # on_log -> report
    assert run.event("train_returned")["train_returned"] == 30
    assert run["finalMetrics"]["final_step"] == 30


def test_resume_checkpoint_resumes_from_keels_folder_exactly(uninterrupted: KeelRun, node: str, module_tmp: Path) -> None:
    at20 = uninterrupted["staged"][1]
    run = run_hf(node, module_tmp / "b", PARAMS, attempt=2, resume={"path": at20["dir"], "step": 20})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert run.event("resume")["resume"] == at20["dir"]
    assert run.event("start_step")["start_step"] == 20
    assert staged_steps(run) == [30]
    assert run.event("train_returned")["weights"] == uninterrupted.event("train_returned")["weights"]


@pytest.mark.parametrize("stop_with", ["keel", "sigterm"])
def test_a_stop_saves_the_step_reached_and_exits_0(node: str, module_tmp: Path, stop_with: str) -> None:
    slow = {"max_steps": 100_000, "save_steps": 100_000, "step_delay_ms": 50}
    run = run_hf(node, module_tmp / f"stop-{stop_with}", slow, stopOn="READY", stopWith=stop_with, stopReason="preempt")
    assert (run["exitCode"], run["signal"]) == (0, None), (run["outcome"], run["timedOut"], run["log"])
    assert run["outcome"] == ("stopped" if stop_with == "keel" else "completed")
    returned = run.event("train_returned")
    assert returned["reason"] == ("preempt" if stop_with == "keel" else "SIGTERM")
    last = returned["train_returned"]
    assert staged_steps(run) == [last] and last >= 3
    assert trainer_state(run["staged"][0])["global_step"] == last
    assert run["finalMetrics"]["final_step"] == last


def test_an_output_dir_outside_keels_checkpoint_folder_is_refused_at_once(node: str, module_tmp: Path) -> None:
    run = run_hf(node, module_tmp / "outside", {**PARAMS, "outside": True})
    assert run["exitCode"] != 0 and run["outcome"] == "crashed"
    assert "is outside keel's checkpoint folder" in run["log"] and "output_dir=keel.checkpoint_dir()" in run["log"]
    assert run["staged"] == []

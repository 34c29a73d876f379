"""The SDK against keel's real trainer side: tests/trainers/trainer.py run by launchTrainer
(activities/src/trainer) through run_with_keel.ts, with its control socket, staging by hard link
and ack/nack; save_async's background hand-off; the SIGTERM pattern. Needs Node from
scripts/bootstrap.sh (.keel/tools.env); fails without it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from conftest import KeelRun


def staged_steps(run: KeelRun) -> list:
    return [s["step"] for s in run["staged"]]


def test_metrics_and_checkpoints_are_acked_and_staged_by_hard_link(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "train"})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert run.event("attached") == {"attached": True}
    # checkpoint() returned only after keel's ack, for each of them
    folder = run.event("acked", 5)["path"]
    file = run.event("acked", 8)["path"]
    checkpoints = Path(run["checkpointDir"])
    assert folder == str(checkpoints / "step-5")
    assert file == str(checkpoints / "step-8" / "model.pt")

    assert staged_steps(run) == [5, 8]
    as_folder, as_file = run["staged"]
    assert as_folder["kind"] == "directory" and as_folder["method"] == "link"
    assert as_folder["files"] == [{"path": "model.bin", "bytes": 1000}, {"path": "optim/state.bin", "bytes": 10}]
    assert as_file["kind"] == "file" and as_file["name"] == "model.pt" and as_file["method"] == "link"
    assert as_file["files"] == [{"path": "model.pt", "bytes": 64}]
    # hard links: keel's staged file is the trainer's very inode
    for staged, source in (
        (Path(as_folder["dir"]) / "optim" / "state.bin", Path(folder) / "optim" / "state.bin"),
        (Path(as_file["dir"]) / "model.pt", Path(file)),
    ):
        assert os.stat(staged).st_ino == os.stat(source).st_ino

    assert run["refused"] == []
    assert run["step"] == 8
    # metric messages and the checkpoint's metrics reached keel's session
    assert run["metrics"] == {"loss": 0.125, "lr": 0.01, "val_loss": 0.5}


def test_done_metrics_arrive(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "train"})
    assert run["exitCode"] == 0
    assert run["finalMetrics"] == {"loss": 0.125, "lr": 0.01, "val_loss": 0.25, "accuracy": 0.9}
    assert run.event("done") == {"done": True}


def test_refused_checkpoints_raise_checkpoint_refused_in_the_trainer(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "refuse"})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    absolute, dotdot, missing = (run.event("step", n) for n in (1, 2, 3))
    for e in (absolute, dotdot):
        assert e["refused"] is True and e["is_keel_error"] is True
        assert "is outside the checkpoint folder" in e["error"]
    assert absolute["error"].startswith(str(Path(run["attemptDir"]) / "outside.bin"))
    assert dotdot["error"].startswith("../outside.bin ")
    assert missing["refused"] is True and "does not exist in the checkpoint folder" in missing["error"]
    # after refusals the connection goes on: a good checkpoint is acked, then one not above it refused
    run.event("acked", 10)
    assert run.event("step", 7)["error"] == "step 7 is not after the last checkpoint's step 10"
    # keel's side agrees: the same refusals with the same messages, only step 10 staged
    assert [(r["step"], r["error"]) for r in run["refused"]] == [
        (e["step"], e["error"]) for e in (absolute, dotdot, missing, run.event("step", 7))
    ]
    assert staged_steps(run) == [10]


def test_keel_stop_saves_a_final_checkpoint_and_exits_0(run_keel) -> None:  # type: ignore[no-untyped-def]
    # What keel does: a stop message, then SIGTERM to the trainer's group.
    run = run_keel({"mode": "loop"}, stopOn="READY", stopReason="preempt")
    assert run["stopSent"] == "preempt"
    assert (run["outcome"], run["exitCode"], run["stopReason"]) == ("stopped", 0, "preempt"), run["log"]
    last = run.event("stopping")["stopping"]
    assert last >= 3
    assert run.event("acked", last)["reason"] == "preempt"  # the message's reason wins over "SIGTERM"
    assert staged_steps(run) == [last]
    assert run["staged"][0]["files"] == [{"path": "final.pt", "bytes": 32}]
    assert run["finalMetrics"]["final_step"] == last


def test_a_stop_message_alone_stops_the_trainer(run_keel) -> None:  # type: ignore[no-untyped-def]
    # The trainer ignores SIGTERM (SDK handler off, SIG_IGN): only the message can reach it.
    run = run_keel({"mode": "loop", "ignore_sigterm": True}, stopOn="READY", stopReason="prune")
    assert (run["outcome"], run["exitCode"], run["stopReason"]) == ("stopped", 0, "prune"), run["log"]
    stopping = run.event("stopping")
    assert stopping["reason"] == "prune"
    assert staged_steps(run) == [stopping["stopping"]]
    assert run.event("acked", stopping["stopping"])


def test_sigterm_alone_stops_the_trainer(run_keel) -> None:  # type: ignore[no-untyped-def]
    # SIGTERM only (no stop message): a preempted pod, say. keel did not ask, so 'completed'.
    run = run_keel({"mode": "loop"}, stopOn="READY", stopWith="sigterm")
    assert run["stopSent"] == "SIGTERM"
    assert (run["exitCode"], run["signal"]) == (0, None), run["log"]
    assert run["outcome"] == "completed"
    stopping = run.event("stopping")
    assert stopping["reason"] == "SIGTERM"
    assert staged_steps(run) == [stopping["stopping"]]
    assert run["finalMetrics"]["final_step"] == stopping["stopping"]


def test_resume_environment_is_read(run_keel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    restored = tmp_path / "restored" / "step-40" / "model.pt"
    restored.parent.mkdir(parents=True)
    restored.write_bytes(b"w" * 123)
    params = {"mode": "env", "lr": 0.003, "layers": [64, 32], "name": "résumé"}
    run = run_keel(params, jobId="job-py", attempt=2, resume={"path": str(restored), "step": 40})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    seen = run.event("params")
    assert seen == {
        "params": params,
        "job_id": "job-py",
        "attempt": 2,
        "checkpoint_dir": run["checkpointDir"],
        "resume": {"path": str(restored), "step": 40},
        "attached": True,
    }
    assert run.event("resumed_bytes") == {"resumed_bytes": 123}
    run.event("acked", 41)  # the next checkpoint after the resumed step is accepted
    assert staged_steps(run) == [41]
    assert run["finalMetrics"] == {"ok": 1}


def test_fresh_start_has_no_resume_point(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "env"})
    assert run["exitCode"] == 0, run["log"]
    seen = run.event("params")
    assert seen["resume"] is None and seen["attempt"] == 1 and seen["attached"] is True
    assert run["staged"] == []


def test_a_forked_child_gets_its_own_connection(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "fork"})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    assert run.event("child_exit") == {"child_exit": 0}
    run.event("acked", 3)  # the parent's connection still works after the fork
    assert staged_steps(run) == [3]
    assert run["metrics"] == {"parent": 1.0, "child": 2.0}
    assert "keel:" not in run["log"]  # no error line: nothing garbled on the parent's socket
    assert run["finalMetrics"] == {"parent": 1.0, "child": 2.0, "parent_done": 1.0}


# --- save_async and the SIGTERM pattern ------------------------------------------------------


def staged_pickle(staged: dict) -> object:
    with open(Path(staged["dir"]) / staged["name"], "rb") as f:
        return pickle.load(f)


def test_save_async_checkpoints_are_written_then_staged_in_order(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "async"})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    checkpoints = Path(run["checkpointDir"])
    for step in (1, 2, 3):
        assert run.event("submitted", step)["path"] == str(checkpoints / f"step-{step}" / "state.pkl")
    assert staged_steps(run) == [1, 2, 3]
    for step, staged in zip((1, 2, 3), run["staged"]):
        assert staged["kind"] == "file" and staged["name"] == "state.pkl" and staged["method"] == "link"
        assert staged_pickle(staged) == {"step": step, "weights": [0.5 * step] * 10}
    assert run["refused"] == []
    assert run["metrics"] == {"loss": 1.0 / 3}  # the checkpoints' metrics reached keel
    assert run["finalMetrics"] == {"loss": 1.0 / 3, "ok": 1}
    run.event("done")


def test_a_refused_save_async_is_raised_by_done_naming_its_step(run_keel) -> None:  # type: ignore[no-untyped-def]
    run = run_keel({"mode": "async", "refuse": True})
    assert (run["outcome"], run["exitCode"]) == ("completed", 0), run["log"]
    refused = run.event("refused")
    assert refused["refused"] is True and refused["step"] == 4 and refused["cause"] == "CheckpointRefused"
    assert refused["error"] == (
        "the background save of step 4 failed: CheckpointRefused: step 4 is not after the last checkpoint's step 5"
    )
    assert staged_steps(run) == [1, 2, 3, 5]
    assert [r["step"] for r in run["refused"]] == [4]
    run.event("done")


@pytest.mark.parametrize("stop_with", ["keel", "sigterm"])
def test_a_stop_with_save_async_saves_the_last_step(run_keel, stop_with: str) -> None:  # type: ignore[no-untyped-def]
    # The documented pattern: finish the step, save_async it, done() (which flushes), exit 0.
    run = run_keel({"mode": "loop", "async_saves": True}, stopOn="READY", stopWith=stop_with, stopReason="preempt")
    assert (run["exitCode"], run["signal"]) == (0, None), run["log"]
    assert run["outcome"] == ("stopped" if stop_with == "keel" else "completed")
    stopping = run.event("stopping")
    last = stopping["stopping"]
    assert stopping["reason"] == ("preempt" if stop_with == "keel" else "SIGTERM")
    steps = staged_steps(run)
    assert steps == sorted(steps) and steps[-1] == last, steps
    assert all(s % 5 == 0 for s in steps[:-1])
    assert staged_pickle(run["staged"][-1]) == {"step": last, "weights": [last] * 100}
    assert run["finalMetrics"]["final_step"] == last
    run.event("done")

"""keel_sdk: the trainer's side of keel's protocol (docs/trainer-protocol.md, version 1), for Python.

Standard library only (Python >= 3.9); ``pip install keel-sdk`` from sdk/python, or put
sdk/python/src on PYTHONPATH. The functions work on one connection to keel, opened on first use
from ``KEEL_CONTROL``. Without ``KEEL_CONTROL`` (a run outside keel) every call still works
locally: metrics are printed to stderr and checkpoints stay where they were written.

    import keel_sdk as keel

    resume = keel.resume_from()
    if resume is not None:
        load(resume.path)                     # the file or folder as it was reported
    start = 0 if resume is None else resume.step + 1
    for step in range(start, total_steps):
        loss = train_step()
        keel.report(step, {"loss": loss})
        stopping = keel.should_stop()         # a stop message or SIGTERM
        if stopping or step % 500 == 0:
            keel.save_async(state(), step)    # snapshot now; written and reported in the background
        if stopping:
            break
    keel.done({"val_loss": evaluate()})       # waits for the pending saves; then exit 0

Framework integrations, imported only on request: ``keel_sdk.lightning`` (PyTorch Lightning) and
``keel_sdk.huggingface`` (the transformers Trainer). See README.md in sdk/python.
"""

from ._protocol import (
    MAX_LINE_BYTES,
    PROTOCOL_VERSION,
    CheckpointRefused,
    CheckpointTimeout,
    KeelError,
    ResumePoint,
    attached,
    attempt,
    checkpoint_dir,
    heartbeat,
    job_id,
    new_checkpoint_path,
    params,
    report,
    resume_from,
    should_stop,
    stop_reason,
)
from ._protocol import _reset_for_tests as _reset_protocol_for_tests
from ._protocol import _state  # noqa: F401 - the tests reach into it
from ._saving import (
    AsyncSaveError,
    Serializer,
    checkpoint,
    configure,
    done,
    save_async,
    snapshot,
    wait_for_saves,
)
from ._saving import _reset_for_tests as _reset_saving_for_tests

__version__ = "0.2.0"

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_LINE_BYTES",
    "KeelError",
    "CheckpointRefused",
    "CheckpointTimeout",
    "AsyncSaveError",
    "ResumePoint",
    "Serializer",
    "params",
    "job_id",
    "attempt",
    "checkpoint_dir",
    "resume_from",
    "attached",
    "report",
    "checkpoint",
    "new_checkpoint_path",
    "save_async",
    "snapshot",
    "wait_for_saves",
    "heartbeat",
    "should_stop",
    "stop_reason",
    "done",
    "configure",
]


def _reset_for_tests() -> None:
    """Forgets the connection, the stop flag and pending saves, and restores SIGTERM (tests only)."""
    _reset_saving_for_tests()
    _reset_protocol_for_tests()

"""keel for the Hugging Face transformers Trainer: a TrainerCallback that reports logs and the
checkpoint folders the Trainer writes to keel, and stops training when keel (or SIGTERM) asks.

    import keel_sdk as keel
    from keel_sdk.huggingface import KeelCallback, resume_checkpoint
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=keel.checkpoint_dir(), save_steps=500, logging_steps=50)
    trainer = Trainer(model=model, args=args, train_dataset=train, callbacks=[KeelCallback()])
    trainer.train(resume_from_checkpoint=resume_checkpoint())   # None on a fresh start
    keel.done(trainer.evaluate())

Needs ``transformers`` (and torch): pip install 'keel-sdk[transformers]'.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, Mapping, Optional

from . import _protocol, _saving

try:
    import transformers
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
except ImportError as _transformers_missing:
    raise ImportError(
        "keel_sdk.huggingface needs Hugging Face transformers: pip install 'keel-sdk[transformers]' "
        f"(or pip install transformers torch). Importing it failed: {_transformers_missing}"
    ) from _transformers_missing

__all__ = ["KeelCallback", "resume_checkpoint"]

#: Without any other message, a heartbeat at least this often (keel kills trainers silent too long).
HEARTBEAT_SECONDS = 5.0


def resume_checkpoint() -> Optional[str]:
    """The checkpoint folder to resume from, for ``trainer.train(resume_from_checkpoint=...)``.

    KEEL_RESUME_FROM: the ``checkpoint-<N>`` folder the Trainer wrote and KeelCallback reported,
    as keel restored it. None on a fresh start.
    """
    point = _protocol.resume_from()
    if point is None:
        return None
    if not os.path.isdir(point.path):
        raise NotADirectoryError(f"the Trainer resumes from a checkpoint folder, but KEEL_RESUME_FROM is {point.path}")
    return point.path


class KeelCallback(transformers.TrainerCallback):  # type: ignore[misc,unused-ignore]
    """Reports the Trainer's logs and checkpoints to keel, and stops training when keel asks.

    - on_log: the numeric logs (``loss``, ``learning_rate``, ``eval_*``, ...) go to keel.report()
      at ``state.global_step``.
    - on_save: the folder the Trainer has just written, ``<output_dir>/checkpoint-<N>``, is
      reported with keel.checkpoint() (with the latest logged metrics); it returns once keel has
      staged it. ``output_dir`` must be inside keel.checkpoint_dir(): use
      ``TrainingArguments(output_dir=keel.checkpoint_dir())``. ``save_total_limit`` may delete old
      folders (keel holds its own hard links).
    - keel.should_stop() (keel's stop message, or SIGTERM) is polled at each step's end: the
      Trainer then saves a checkpoint at that step and stops, so train() returns; then call
      keel.done() and exit 0.

    With several processes, only the main process talks to keel, and its stop decision is
    broadcast (torch.distributed) to the others.
    """

    def __init__(self) -> None:
        super().__init__()
        resume = _protocol.resume_from()
        self._last_saved = resume.step if resume is not None else 0
        self._latest: Dict[str, float] = {}  # the latest logged value of each metric
        self._said_at = time.monotonic()
        # SIGTERM must mean "stop" in every process from now on: a DataLoader worker forked later
        # inherits the handler instead of dying from the signal. (No connection is opened here.)
        _protocol._maybe_install_sigterm()

    def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            # Connect now: keel counts the silence since the launch, and imports and the model's
            # loading may take long before the first step ends.
            _protocol.attached()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and _protocol.attached():
            root = os.path.realpath(_protocol.checkpoint_dir())
            output = os.path.realpath(args.output_dir)
            if os.path.commonpath([root, output]) != root:
                raise ValueError(
                    f"TrainingArguments.output_dir {args.output_dir} is outside keel's checkpoint folder {root}, "
                    "so keel would refuse every checkpoint: use output_dir=keel.checkpoint_dir()"
                )

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Optional[Mapping[str, Any]] = None, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = _protocol._finite_scalars(logs)
        if metrics:
            self._latest.update(metrics)
            _protocol.report(state.global_step, metrics)
            self._said_at = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._heartbeat(state.global_step)
        if self._stop_asked(args, state):
            control.should_training_stop = True
            if state.global_step > self._last_saved:
                control.should_save = True  # the Trainer saves this step's checkpoint, then stops

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # A save at the end of an epoch whose last step was just saved would write the same
        # checkpoint-<N> folder again: files keel may hold by hard link must never change.
        if state.global_step <= self._last_saved:
            control.should_save = False

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = state.global_step
        if step <= self._last_saved:
            return
        self._last_saved = step
        if state.is_world_process_zero:
            folder = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{step}")
            _saving.checkpoint(step, os.path.abspath(folder), self._latest)
            self._said_at = time.monotonic()

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._heartbeat(state.global_step)  # a long evaluation says nothing else

    def _stop_asked(self, args: Any, state: Any) -> bool:
        asked = bool(state.is_world_process_zero and _protocol.should_stop())  # only the main process asks keel
        if getattr(args, "world_size", 1) > 1:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():  # every rank must stop at the same step
                import torch

                flag = torch.tensor([int(asked)], device=args.device)
                dist.broadcast(flag, src=0)
                asked = bool(flag.item())
        return asked

    def _heartbeat(self, step: int) -> None:
        if time.monotonic() - self._said_at > HEARTBEAT_SECONDS and _protocol.attached():
            _protocol.heartbeat(step)
            self._said_at = time.monotonic()


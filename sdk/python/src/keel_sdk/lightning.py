"""keel for PyTorch Lightning: a Callback that reports metrics and checkpoints to keel and stops
training when keel (or SIGTERM) asks, and the checkpoint to resume from.

    import lightning.pytorch as pl
    import keel_sdk as keel
    from keel_sdk.lightning import KeelCallback, resume_ckpt_path

    trainer = pl.Trainer(max_steps=10_000, callbacks=[KeelCallback(checkpoint_every_n_steps=500)])
    trainer.fit(model, datamodule, ckpt_path=resume_ckpt_path())   # None on a fresh start
    keel.done({"val_loss": float(trainer.callback_metrics["val_loss"])})

Needs ``lightning`` (``lightning.pytorch``), or else ``pytorch_lightning``: pip install 'keel-sdk[lightning]'.
"""

from __future__ import annotations

import glob
import importlib
import os
import time
from typing import Any, Optional

from . import _protocol, _saving

try:
    import lightning.pytorch as pl
except ImportError as _lightning_missing:
    try:  # the older package name; its Trainer wants callbacks of its own Callback class
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        raise ImportError(
            "keel_sdk.lightning needs PyTorch Lightning: pip install 'keel-sdk[lightning]' "
            f"(or pip install lightning). Importing it failed: {_lightning_missing}"
        ) from _lightning_missing

try:  # what Lightning raises to end fit() after SIGTERM (a SystemExit)
    _SIGTERMException: Any = importlib.import_module(pl.__name__ + ".utilities.exceptions").SIGTERMException
except (ImportError, AttributeError):  # Lightning < 2.0
    _SIGTERMException = ()

__all__ = ["KeelCallback", "resume_ckpt_path"]

#: Without any other message, a heartbeat at least this often (keel kills trainers silent too long).
HEARTBEAT_SECONDS = 5.0


def resume_ckpt_path(default_name: str = "model.ckpt") -> Optional[str]:
    """The checkpoint to resume from, for ``trainer.fit(..., ckpt_path=resume_ckpt_path())``.

    KEEL_RESUME_FROM's file; when keel restored a folder, the ``.ckpt`` file in it (``default_name``
    when there are several). None on a fresh start.
    """
    point = _protocol.resume_from()
    if point is None:
        return None
    if not os.path.isdir(point.path):
        return point.path
    named = os.path.join(point.path, default_name)
    if os.path.isfile(named):
        return named
    found = sorted(glob.glob(os.path.join(point.path, "*.ckpt")))
    if len(found) != 1:
        raise FileNotFoundError(f"no single .ckpt file in the checkpoint to resume from, {point.path}: {found}")
    return found[0]


class KeelCallback(pl.Callback):  # type: ignore[misc,unused-ignore]
    """Reports Lightning's logged metrics and checkpoints to keel, and stops when keel asks.

    - Every ``report_every_n_steps`` optimizer steps (``trainer.global_step``), the numeric
      ``trainer.callback_metrics`` (what ``self.log`` logged) go to keel.report().
    - Every ``checkpoint_every_n_steps`` steps (0: never), on a stop, and at the end of training
      (``save_on_train_end``), ``trainer.save_checkpoint`` writes ``<checkpoint_dir>/step-<N>/
      <filename>`` and keel.checkpoint() reports it with those metrics (it returns once keel has
      staged the file). Resume with ``trainer.fit(..., ckpt_path=resume_ckpt_path())``.
    - keel.should_stop() (keel's stop message, or SIGTERM) is polled after every training batch:
      the callback saves a checkpoint at that step and sets ``trainer.should_stop``, so fit()
      returns; then call keel.done() and exit 0. On SIGTERM, Lightning itself may end fit() with
      its SIGTERMException (a SystemExit, exit code 0): the callback saves in on_exception first.

    With several processes (DDP), only global rank 0 talks to keel; the stop decision and the
    checkpoint's path are shared with the other ranks through the strategy.
    """

    def __init__(
        self,
        *,
        report_every_n_steps: int = 50,
        checkpoint_every_n_steps: int = 0,
        save_on_stop: bool = True,
        save_on_train_end: bool = True,
        filename: str = "model.ckpt",
    ) -> None:
        super().__init__()
        if report_every_n_steps < 1 or checkpoint_every_n_steps < 0:
            raise ValueError("report_every_n_steps must be >= 1 and checkpoint_every_n_steps >= 0")
        _protocol._check_file_name(filename)
        if not filename:
            raise ValueError("filename must be a plain file name such as 'model.ckpt'")
        self.report_every_n_steps = report_every_n_steps
        self.checkpoint_every_n_steps = checkpoint_every_n_steps
        self.save_on_stop = save_on_stop
        self.save_on_train_end = save_on_train_end
        self.filename = filename
        resume = _protocol.resume_from()
        self._last_saved = resume.step if resume is not None else 0  # keel wants each step above the last
        self._last_reported = -1
        self._said_at = time.monotonic()
        # SIGTERM must mean "stop" in every process from now on: a DataLoader worker forked later
        # inherits the handler instead of dying from the signal. (No connection is opened here.)
        _protocol._maybe_install_sigterm()

    # --- hooks ---------------------------------------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.is_global_zero:
            # Connect now: keel counts the silence since the launch, and imports, data and model
            # setup may take long before the first batch ends.
            _protocol.attached()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = int(trainer.global_step)  # optimizer steps so far, this batch's included
        if trainer.is_global_zero:
            if step > 0 and step % self.report_every_n_steps == 0 and step != self._last_reported:
                metrics = _protocol._finite_scalars(trainer.callback_metrics)
                if metrics:
                    _protocol.report(step, metrics)
                    self._said_at = time.monotonic()
                self._last_reported = step
            self._heartbeat(step)
        asked = bool(trainer.is_global_zero and _protocol.should_stop())  # only rank 0 talks to keel
        stop = trainer.strategy.reduce_boolean_decision(asked, all=False)  # the same answer on every rank
        if stop:
            trainer.should_stop = True
        due = self.checkpoint_every_n_steps > 0 and step % self.checkpoint_every_n_steps == 0
        if (stop and self.save_on_stop) or due:
            self._save(trainer, step)

    def on_validation_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if trainer.is_global_zero:
            self._heartbeat(int(trainer.global_step))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.save_on_train_end:
            self._save(trainer, int(trainer.global_step))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        # Lightning's own SIGTERM handling raises SIGTERMException between batches, maybe before
        # on_train_batch_end saw the stop: save here, then let it end fit(). Any other exception
        # is a crash: keel resumes from the last checkpoint, not from a state that failed.
        if self.save_on_stop and isinstance(exception, _SIGTERMException):
            self._save(trainer, int(trainer.global_step))

    # --- internals -----------------------------------------------------------------------------

    def _save(self, trainer: Any, step: int) -> None:
        if step <= self._last_saved:  # saved at this step already (or resumed from it)
            return
        zero = trainer.is_global_zero
        # trainer.save_checkpoint runs on every rank (a strategy may write shards); rank 0 picks the path.
        path = trainer.strategy.broadcast(_protocol.new_checkpoint_path(step, self.filename) if zero else None, 0)
        trainer.save_checkpoint(path)
        self._last_saved = step
        if zero:
            _saving.checkpoint(step, path, _protocol._finite_scalars(trainer.callback_metrics))
            self._said_at = time.monotonic()

    def _heartbeat(self, step: int) -> None:
        if time.monotonic() - self._said_at > HEARTBEAT_SECONDS and _protocol.attached():
            _protocol.heartbeat(step)
            self._said_at = time.monotonic()


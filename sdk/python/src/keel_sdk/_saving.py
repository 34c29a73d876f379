"""save_async: take a snapshot of the training state now, then write it and hand it to keel in one
background thread, so the training loop goes on while the checkpoint is serialized.

Also the public checkpoint(), done() and configure(), which wrap the protocol's: a checkpoint
reported directly must come after the ones still queued here (keel refuses a step that is not
above the last one), and done() must not close the connection while a save is still queued.
"""

from __future__ import annotations

import atexit
import copy
import os
import pickle
import queue
import sys
import threading
import traceback
from typing import Any, Callable, NamedTuple, Optional, Tuple

from . import _protocol
from ._protocol import CheckpointTimeout, KeelError, Metrics, PathLike, _check_file_name, _check_metrics, _check_step

#: ``serializer(obj, path)`` writes the snapshot ``obj`` to ``path`` (a file, or the step's folder
#: when ``path_name=""``).
Serializer = Callable[[Any, str], None]

DEFAULT_MAX_PENDING_SAVES = 2

# Values that are never modified in place: the snapshot shares them.
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, range)


class AsyncSaveError(KeelError):
    """A save_async() failed in the background: writing the snapshot, or keel refusing it.

    Raised by the next save_async(), checkpoint(), wait_for_saves() or done(). ``step`` is the
    step of the failed save; the original exception is ``__cause__`` (a CheckpointRefused when
    keel answered ``nack``, a KeelError when keel is gone, an OSError when the disk is full, ...).
    """

    def __init__(self, step: int, error: BaseException) -> None:
        super().__init__(f"the background save of step {step} failed: {type(error).__name__}: {error}")
        self.step = step
        self.__cause__ = error


def snapshot(state: Any) -> Tuple[Any, bool]:
    """A copy of ``state`` that later changes to it cannot reach, and whether it holds tensors.

    torch tensors are detached and copied to CPU memory (a CUDA tensor's copy waits for the
    kernels that write it, so the snapshot is the state as of this call), through dicts, lists
    and tuples (their types are kept: OrderedDict, namedtuple, ...), which covers model and
    optimizer state dicts. numpy arrays are copied; anything else is deep-copied (a tensor hidden
    inside another object is then copied on its own device).
    """
    # Only look for the types of modules the trainer imported itself: keel_sdk never imports them.
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    tensor_type = getattr(torch, "Tensor", None)
    array_type = getattr(np, "ndarray", None)
    found = False

    def copy_of(value: Any) -> Any:
        nonlocal found
        if isinstance(value, _IMMUTABLE):
            return value
        if tensor_type is not None and isinstance(value, tensor_type):
            found = True
            return value.detach().to("cpu", copy=True)
        if array_type is not None and isinstance(value, array_type):
            return value.copy()
        if isinstance(value, dict):
            out = copy.copy(value)  # a shallow copy keeps the type (OrderedDict, defaultdict's factory)
            for key in out:
                out[key] = copy_of(value[key])
            return out
        if type(value) is list:
            return [copy_of(v) for v in value]
        if type(value) is tuple:
            return tuple(copy_of(v) for v in value)
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*(copy_of(v) for v in value))
        return copy.deepcopy(value)

    return copy_of(state), found


def _torch_save(obj: Any, path: str) -> None:
    _write_then_rename(path, lambda partial: sys.modules["torch"].save(obj, partial))


def _pickle_save(obj: Any, path: str) -> None:
    def write(partial: str) -> None:
        with open(partial, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)

    _write_then_rename(path, write)


def _write_then_rename(path: str, write: Callable[[str], None]) -> None:
    # A process killed mid-write leaves `<name>.partial`, never a truncated file under the real name.
    partial = path + ".partial"
    write(partial)
    os.replace(partial, path)


class _Save(NamedTuple):
    step: int
    obj: Any
    path: str  # what is written and reported: the file, or the folder
    metrics: Metrics
    write: Serializer
    slot: threading.Semaphore  # released once this save is handed off (or failed)


class _Saver:
    """The queue of pending saves and the one thread that writes and reports them, in order."""

    def __init__(self) -> None:
        self.submit_lock = threading.Lock()  # one save_async at a time: folders and queue in step order
        self.slots = threading.Semaphore(DEFAULT_MAX_PENDING_SAVES)
        self.queue: queue.SimpleQueue[_Save] = queue.SimpleQueue()
        self.changed = threading.Condition()  # guards pending and error
        self.pending = 0
        self.error: Optional[AsyncSaveError] = None
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.work, name="keel-sdk-saver", daemon=True)
            self.thread.start()

    def work(self) -> None:
        while True:
            save: Optional[_Save] = self.queue.get()
            assert save is not None
            try:
                save.write(save.obj, save.path)
                _protocol.checkpoint(save.step, save.path, save.metrics)
            except BaseException as err:  # noqa: BLE001 - any failure is the trainer's to see
                # The traceback's frames (the serializer's) hold the snapshot: keep the lines only.
                traceback.clear_frames(err.__traceback__)
                failure = AsyncSaveError(save.step, err)
                with self.changed:
                    if self.error is None:
                        self.error = failure
                    else:  # one error is raised at a time; say the others now
                        print(f"keel: {failure}", file=sys.stderr, flush=True)
            finally:
                slot = save.slot
                save = None  # let the snapshot's memory go before the slot frees
                slot.release()
                with self.changed:
                    self.pending -= 1
                    self.changed.notify_all()

    def in_worker(self) -> bool:
        return threading.current_thread() is self.thread


_saver = _Saver()


def save_async(
    state: Any,
    step: int,
    *,
    path_name: Optional[str] = None,
    metrics: Optional[Metrics] = None,
    serializer: Optional[Serializer] = None,
) -> str:
    """Snapshots ``state`` now; writes it and reports it as the checkpoint of ``step`` in the background.

    The snapshot (see snapshot(): tensors copied to CPU memory, everything else copied) is taken
    before this returns, so the trainer may go on training and change its state at once. One
    background thread then writes it into a new folder (new_checkpoint_path(step)) with
    ``serializer(obj, path)``, or else with ``torch.save`` when the state holds torch tensors and
    ``pickle`` otherwise (written as ``<name>.partial``, then renamed), and reports it with
    checkpoint(step, path, metrics). Saves are written and reported in the order of the calls.

    ``path_name`` is the file's name in the folder: by default ``state.pt`` (torch.save),
    ``state.pkl`` (pickle) or ``state`` (a serializer of yours). The file is what is reported, and
    what resume_from().path names on resume. With ``path_name=""`` (a serializer only), the
    serializer gets the folder to write any files into, and the folder is reported.

    At most ``max_pending_saves`` saves (configure(); default 2) are pending at once, each holding
    a snapshot in memory: when that many are written or waiting, save_async **blocks** until the
    oldest has been handed to keel, before it takes its snapshot.

    A background failure is raised as AsyncSaveError (naming the step) by the next save_async(),
    checkpoint(), wait_for_saves() or done(). Call wait_for_saves() (or done(), which waits first)
    before exiting. At interpreter exit, pending saves are finished anyway.

    Returns the path that will be reported (the file, or the folder).
    """
    raise_save_error()
    step = _check_step(step)
    checked = _check_metrics(metrics or {})
    if path_name is not None:
        if path_name == "" and serializer is None:
            raise ValueError('path_name="" (write into the folder) needs a serializer')
        _check_file_name(path_name)
    saver = _saver
    with saver.submit_lock:
        slot = saver.slots
        slot.acquire()  # blocks while max_pending_saves saves are pending
        try:
            obj, has_tensors = snapshot(state)
            write: Serializer
            if serializer is not None:
                write, default_name = serializer, "state"
            elif has_tensors:
                write, default_name = _torch_save, "state.pt"
            else:
                write, default_name = _pickle_save, "state.pkl"
            path = _protocol.new_checkpoint_path(step, default_name if path_name is None else path_name)
        except BaseException:
            slot.release()
            raise
        with saver.changed:
            saver.pending += 1
        saver.queue.put(_Save(step, obj, path, checked, write, slot))
        saver.start()
    return path


def wait_for_saves(timeout: Optional[float] = None) -> None:
    """Waits until every save_async() so far has been written and handed to keel (or failed).

    Then raises AsyncSaveError for a failed one. CheckpointTimeout after ``timeout`` seconds
    (default: as long as it takes).
    """
    saver = _saver
    if not saver.in_worker():  # a serializer that reports a checkpoint itself must not wait for itself
        with saver.changed:
            if not saver.changed.wait_for(lambda: saver.pending == 0, timeout):
                raise CheckpointTimeout(f"{saver.pending} background save(s) still pending after {timeout}s")
    raise_save_error()


def raise_save_error() -> None:
    """Raises the AsyncSaveError of a failed background save, once."""
    saver = _saver
    with saver.changed:
        error, saver.error = saver.error, None
    if error is not None:
        raise error


def checkpoint(step: int, path: PathLike, metrics: Optional[Metrics] = None, timeout: Optional[float] = None) -> None:
    """Reports a complete checkpoint and returns once keel has staged it (its ``ack``).

    Pending save_async() saves are handed off first (so steps reach keel in order), and a failed
    one is raised as AsyncSaveError. ``path`` is a file or folder inside checkpoint_dir() (a
    relative path is relative to checkpoint_dir(), as the protocol says). After this returns, the
    files may be deleted, but never modified. Raises CheckpointRefused on keel's ``nack``,
    CheckpointTimeout after ``timeout`` seconds (default: wait as long as it takes), KeelError if
    keel closes the socket first. Without keel, returns at once.
    """
    wait_for_saves(timeout)
    _protocol.checkpoint(step, path, metrics, timeout)


def done(metrics: Optional[Metrics] = None) -> None:
    """Final metrics; then the connection is flushed and closed. Exit 0 after it.

    Waits for pending save_async() saves first, and raises AsyncSaveError for a failed one
    (without sending ``done``: the run did not end well).
    """
    wait_for_saves()
    _protocol.done(metrics)


def configure(*, install_sigterm_handler: Optional[bool] = None, max_pending_saves: Optional[int] = None) -> None:
    """Settings, before or after the first call.

    ``install_sigterm_handler=False`` keeps SIGTERM's previous behaviour (or restores it, when
    keel_sdk installed its handler already); the environment variable KEEL_SDK_SIGTERM=0 does the
    same. ``max_pending_saves`` (default 2): how many save_async() snapshots may be pending at
    once before save_async blocks.
    """
    _protocol.configure(install_sigterm_handler=install_sigterm_handler)
    if max_pending_saves is not None:
        if isinstance(max_pending_saves, bool) or not isinstance(max_pending_saves, int) or max_pending_saves < 1:
            raise ValueError(f"max_pending_saves must be an integer >= 1, not {max_pending_saves!r}")
        with _saver.submit_lock:
            # Saves pending now release the semaphore they took; new ones take from this one.
            _saver.slots = threading.Semaphore(max_pending_saves)


def _finish_at_exit() -> None:
    # A trainer that exits (or crashes) right after save_async still gets its checkpoint handed off.
    if _saver.pending == 0:
        return
    try:
        wait_for_saves()
    except KeelError as err:
        print(f"keel: {err}", file=sys.stderr, flush=True)


atexit.register(_finish_at_exit)


def _after_fork_in_child() -> None:
    # The saver thread does not exist in a forked child, and its queue is the parent's work.
    global _saver
    _saver = _Saver()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _reset_for_tests() -> None:
    """Waits briefly for pending saves, then forgets them and any error (tests only)."""
    global _saver
    with _saver.changed:
        _saver.changed.wait_for(lambda: _saver.pending == 0, 5)
    _saver = _Saver()

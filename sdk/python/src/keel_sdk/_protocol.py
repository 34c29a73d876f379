"""The trainer's side of keel's protocol (docs/trainer-protocol.md, version 1): the environment,
the control socket, metrics, checkpoints, stop and SIGTERM. Standard library only.

Public names are re-exported by keel_sdk/__init__.py; import ``keel_sdk``, not this module.
"""

from __future__ import annotations

import json
import math
import operator
import os
import signal
import socket
import sys
import threading
from typing import Any, Dict, Mapping, NamedTuple, Optional, Union

PROTOCOL_VERSION = 1
#: The longest line either side may send, without its newline.
MAX_LINE_BYTES = 1024 * 1024
#: Set to 0 (or false/no/off) to keep keel_sdk from installing its SIGTERM handler.
SIGTERM_ENV = "KEEL_SDK_SIGTERM"

# What keel accepts (activities/src/trainer/messages.ts). A checkpoint line keel cannot parse is
# answered with `error`, not `nack`, so checkpoint() would wait forever: check it all here first.
_MAX_STEP = 2**53 - 1
_MAX_METRICS = 256
_MAX_METRIC_NAME = 200
_MAX_PATH = 4096

Metrics = Mapping[str, float]
PathLike = Union[str, "os.PathLike[str]"]


class KeelError(Exception):
    """keel could not be reached, closed the control socket (checkpoint() cannot be staged), or
    the SDK was used after done()."""


class CheckpointRefused(KeelError):
    """keel answered `nack`: the checkpoint was not staged (the message says why)."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(message)
        self.step = step


class CheckpointTimeout(KeelError, TimeoutError):
    """checkpoint(timeout=...) ran out before keel answered. keel may still stage it later."""


class ResumePoint(NamedTuple):
    """The checkpoint this attempt resumes from: the file or folder as it was reported."""

    path: str
    step: int


# --- the environment keel sets ---------------------------------------------------------------


def params() -> Dict[str, Any]:
    """The job's params (``KEEL_PARAMS``, a JSON object); ``{}`` when absent."""
    raw = os.environ.get("KEEL_PARAMS", "")
    if raw.strip() == "":
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"KEEL_PARAMS is not a JSON object: {raw[:80]}")
    return value


def job_id() -> Optional[str]:
    """The job's id (``KEEL_JOB_ID``), or None outside keel."""
    return os.environ.get("KEEL_JOB_ID") or None


def attempt() -> int:
    """1 for the first run of the job, then 2, 3, ... after each resume."""
    raw = os.environ.get("KEEL_ATTEMPT", "")
    return int(raw) if raw.strip() else 1


def checkpoint_dir() -> str:
    """Where to write checkpoints (``KEEL_CHECKPOINT_DIR``, else ./checkpoints); absolute, created."""
    folder = os.path.abspath(os.environ.get("KEEL_CHECKPOINT_DIR") or "checkpoints")
    os.makedirs(folder, exist_ok=True)
    return folder


def resume_from() -> Optional[ResumePoint]:
    """The restored checkpoint to resume from, or None on a fresh start."""
    path = os.environ.get("KEEL_RESUME_FROM", "")
    step = os.environ.get("KEEL_RESUME_STEP", "")
    if path == "" or step.strip() == "":
        return None
    return ResumePoint(path, int(step))


def new_checkpoint_path(step: int, name: str = "") -> str:
    """A new, empty folder ``<checkpoint_dir>/step-<step>`` to write one checkpoint into.

    Without ``name`` the folder is returned (report the folder: every file in it is staged). With
    ``name`` (a file name such as ``"model.pt"``), the path of that file inside the new folder is
    returned (report the file). If ``step-<step>`` exists already, ``step-<step>-2``, ``-3``, ...
    is used, so a reported file (which keel may hold by hard link) is never written again.
    """
    step = _check_step(step)
    _check_file_name(name)
    root = checkpoint_dir()
    base = os.path.join(root, f"step-{step}")
    folder, n = base, 1
    while True:
        try:
            os.mkdir(folder)
            break
        except FileExistsError:
            n += 1
            folder = f"{base}-{n}"
    return os.path.join(folder, name) if name else folder


# --- talking to keel -------------------------------------------------------------------------


def attached() -> bool:
    """True when run by keel (connected to its control socket)."""
    return _session() is not None


def report(step: int, metrics: Metrics) -> None:
    """Metrics at a step (finite numbers). Does not wait; without keel, printed to stderr.

    Once keel has closed the control socket, metrics are dropped (and should_stop() is True).
    """
    message = {"type": "metric", "step": _check_step(step), "metrics": _check_metrics(metrics)}
    conn = _session()
    if conn is None:
        print(f"step {message['step']}: {json.dumps(message['metrics'])}", file=sys.stderr, flush=True)
    else:
        conn.send(message)


def checkpoint(step: int, path: PathLike, metrics: Optional[Metrics] = None, timeout: Optional[float] = None) -> None:
    """Reports a complete checkpoint and returns once keel has staged it (its ``ack``).

    ``path`` is a file or folder inside checkpoint_dir() (a relative path is relative to
    checkpoint_dir(), as the protocol says). After this returns, the files may be deleted, but
    never modified. Raises CheckpointRefused on keel's ``nack``, CheckpointTimeout after
    ``timeout`` seconds (default: wait as long as it takes), KeelError if keel closes the socket
    first. Without keel, returns at once.
    """
    reported = os.fsdecode(os.fspath(path))
    if not 1 <= _utf16_len(reported) <= _MAX_PATH:
        raise ValueError(f"checkpoint path must be 1 to {_MAX_PATH} characters long")
    message = {
        "type": "checkpoint",
        "step": _check_step(step),
        "path": reported,
        "metrics": _check_metrics(metrics or {}),
    }
    conn = _session()
    if conn is not None:
        conn.checkpoint(message, timeout)


def heartbeat(step: Optional[int] = None) -> None:
    """Alive, during long steps with nothing else to say (keel kills trainers silent too long)."""
    message: Dict[str, Any] = {"type": "heartbeat"}
    if step is not None:
        message["step"] = _check_step(step)
    conn = _session()
    if conn is not None:
        conn.send(message)


def should_stop() -> bool:
    """True once the trainer should save and exit 0: keel's stop message, SIGTERM, or keel gone."""
    return stop_reason() is not None


def stop_reason() -> Optional[str]:
    """Why the trainer should stop, or None.

    ``cancel``, ``prune``, ``preempt`` (keel's stop message), ``SIGTERM`` (the signal alone), or
    ``keel disconnected`` (keel closed the control socket: its worker is gone).
    """
    _session(polling=True)
    return _state.stop_reason


def done(metrics: Optional[Metrics] = None) -> None:
    """Final metrics; then the connection is flushed and closed. Exit 0 after it."""
    final = _check_metrics(metrics or {})
    conn = _session()
    if conn is None:
        if final:
            print(f"done: {json.dumps(final)}", file=sys.stderr, flush=True)
        return
    conn.done(final)


def configure(*, install_sigterm_handler: Optional[bool] = None) -> None:
    """Settings, before or after the first call.

    ``install_sigterm_handler=False`` keeps SIGTERM's previous behaviour (or restores it, when
    keel_sdk installed its handler already); the environment variable KEEL_SDK_SIGTERM=0 does the
    same.
    """
    if install_sigterm_handler is not None:
        _state.sigterm_wanted = install_sigterm_handler
        if install_sigterm_handler:
            _maybe_install_sigterm()
        else:
            _uninstall_sigterm()


# --- internals -------------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: Optional[_Connection] = None
        self.connected = False  # tried once: conn is the answer (None: no keel)
        self.stop_reason: Optional[str] = None
        self.sigterm_wanted: Optional[bool] = None  # None: as KEEL_SDK_SIGTERM says
        self.sigterm_installed = False
        self.sigterm_previous: Any = None


_state = _State()


def _session(polling: bool = False) -> Optional[_Connection]:
    """The connection to keel (opened on first use), or None outside keel."""
    state = _state
    if not state.connected:
        with state.lock:
            if not state.connected:
                control = os.environ.get("KEEL_CONTROL", "")
                state.conn = _Connection(control) if control else None
                state.connected = True
    conn = state.conn
    # Under keel, SIGTERM means stop from the first call on. Outside keel only once the trainer
    # polls should_stop(): a script that never asks must still die from a plain `kill`.
    if not state.sigterm_installed and (conn is not None or polling):
        _maybe_install_sigterm()
    return conn


def _sigterm_enabled() -> bool:
    if _state.sigterm_wanted is not None:
        return _state.sigterm_wanted
    return os.environ.get(SIGTERM_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _on_sigterm(signum: int, frame: Any) -> None:
    # No locks here: the interrupted main thread may hold them.
    if _state.stop_reason is None:
        _state.stop_reason = "SIGTERM"
    previous = _state.sigterm_previous
    if callable(previous) and previous is not _on_sigterm:
        previous(signum, frame)


def _maybe_install_sigterm() -> None:
    state = _state
    if state.sigterm_installed or not _sigterm_enabled():
        return
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; tried again on its next call
    with state.lock:
        if state.sigterm_installed:
            return
        state.sigterm_previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm)
        state.sigterm_installed = True


def _uninstall_sigterm() -> None:
    state = _state
    if not state.sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    with state.lock:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            previous = state.sigterm_previous
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        state.sigterm_installed = False
        state.sigterm_previous = None


class _Pending:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: Optional[BaseException] = None


class _Connection:
    """One Unix-socket connection to keel: a send lock, and a daemon thread reading keel's lines."""

    def __init__(self, control: str) -> None:
        self.pid = os.getpid()
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: Dict[int, _Pending] = {}
        self._done = False  # done() was called (or the tests closed it): closed on purpose
        self._lost = False  # keel closed the socket, or writing to it failed
        self._eof = threading.Event()  # the reader saw the end of keel's side
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(control)
        except OSError as err:
            sock.close()
            raise KeelError(f"cannot connect to keel's control socket KEEL_CONTROL={control}: {err}") from err
        self._sock = sock
        self._reader = threading.Thread(target=self._read, name="keel-sdk-reader", daemon=True)
        self._reader.start()
        self.send({"type": "hello", "protocol": PROTOCOL_VERSION, "pid": self.pid})

    def send(self, message: Dict[str, Any], required: bool = False) -> None:
        """Sends one line. Once keel is gone, a line that is not `required` is dropped."""
        line = _encode(message)
        with self._send_lock:
            if self._done:
                raise KeelError("done() was called: the connection to keel is closed")
            if not self._lost:
                try:
                    self._sock.sendall(line)
                    return
                except OSError:
                    self._keel_lost()
        if required:
            raise KeelError("keel closed the control socket")

    def checkpoint(self, message: Dict[str, Any], timeout: Optional[float]) -> None:
        step: int = message["step"]
        pending = _Pending()
        with self._pending_lock:
            if self._done:
                raise KeelError("done() was called: the connection to keel is closed")
            if self._lost or self._eof.is_set():
                raise KeelError("keel closed the control socket: the checkpoint cannot be staged")
            if step in self._pending:
                raise KeelError(f"a checkpoint for step {step} is already waiting for keel")
            self._pending[step] = pending  # before sending: the ack may come back at once
        try:
            self.send(message, required=True)
        except BaseException:
            with self._pending_lock:
                self._pending.pop(step, None)
            raise
        if not pending.event.wait(timeout):
            with self._pending_lock:
                self._pending.pop(step, None)
            if not pending.event.is_set():
                raise CheckpointTimeout(f"keel did not answer the checkpoint of step {step} within {timeout}s")
        if pending.error is not None:
            raise pending.error

    def done(self, metrics: Dict[str, float]) -> None:
        if self._done:
            return
        self.send({"type": "done", "metrics": metrics})
        with self._send_lock:
            self._done = True
            try:
                # Half-close and wait for keel's end: then keel has read every line we sent.
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._eof.wait(5)
        self._sock.close()

    def close_for_tests(self) -> None:
        self._done = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _keel_lost(self) -> None:
        """keel is gone (its worker died, say): stop as if asked to, so the trainer saves and exits
        instead of holding its GPU for a run keel will start again elsewhere."""
        if self._lost or self._done:
            return
        self._lost = True
        if _state.conn is self and _state.stop_reason is None:
            _state.stop_reason = "keel disconnected"
        print("keel: the control socket closed (keel is gone): stopping", file=sys.stderr, flush=True)

    def _read(self) -> None:
        buffered = b""
        discarding = False
        try:
            while True:
                try:
                    chunk = self._sock.recv(65536)
                except OSError:
                    break
                if not chunk:
                    break
                buffered += chunk
                while True:
                    newline = buffered.find(b"\n")
                    if newline < 0:
                        break
                    line, buffered = buffered[:newline], buffered[newline + 1 :]
                    if discarding:
                        discarding = False
                    elif line.strip():
                        self._receive(line)
                if len(buffered) > MAX_LINE_BYTES:
                    buffered, discarding = b"", True
        finally:
            self._keel_lost()
            self._eof.set()
            with self._pending_lock:
                waiting = list(self._pending.values())
                self._pending.clear()
            for pending in waiting:
                pending.error = KeelError("keel closed the control socket before answering the checkpoint")
                pending.event.set()

    def _receive(self, line: bytes) -> None:
        try:
            message = json.loads(line.decode("utf-8"))
        except ValueError:
            print(f"keel: unreadable line from keel: {line[:80]!r}", file=sys.stderr, flush=True)
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind in ("ack", "nack"):
            step = message.get("step")
            if not isinstance(step, int):
                return
            with self._pending_lock:
                pending = self._pending.pop(step, None)
            if pending is not None:
                if kind == "nack":
                    pending.error = CheckpointRefused(step, str(message.get("error") or "refused"))
                pending.event.set()
        elif kind == "stop":
            reason = message.get("reason")
            # keel sends a stop message and SIGTERM together: the message's reason says more.
            if _state.stop_reason in (None, "SIGTERM"):
                _state.stop_reason = reason if isinstance(reason, str) and reason else "stop"
        elif kind == "error":
            print(f"keel: {message.get('error')}", file=sys.stderr, flush=True)


def _encode(message: Dict[str, Any]) -> bytes:
    try:
        data = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"cannot send a message that is not valid UTF-8: {err}") from err
    if len(data) > MAX_LINE_BYTES:
        raise ValueError(f"a {message.get('type')} message of {len(data)} bytes is over keel's {MAX_LINE_BYTES}")
    return data + b"\n"


def _check_step(step: int) -> int:
    if isinstance(step, bool):
        raise TypeError("step must be an integer, not a bool")
    try:
        value = operator.index(step)
    except TypeError:
        raise TypeError(f"step must be an integer, not {type(step).__name__}") from None
    if not 0 <= value <= _MAX_STEP:
        raise ValueError(f"step must be between 0 and {_MAX_STEP}, not {value}")
    return value


def _check_file_name(name: str) -> None:
    if name and (name in (".", "..") or "/" in name or os.sep in name or "\0" in name):
        raise ValueError(f"name must be a plain file name, not {name!r}")


def _check_metrics(metrics: Metrics) -> Dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a dict of name to number, not {type(metrics).__name__}")
    if len(metrics) > _MAX_METRICS:
        raise ValueError(f"at most {_MAX_METRICS} metrics per message, not {len(metrics)}")
    out: Dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not 1 <= _utf16_len(name) <= _MAX_METRIC_NAME:
            raise ValueError(f"metric name {name!r} must be a string of 1 to {_MAX_METRIC_NAME} characters")
        if isinstance(value, (str, bytes)) or value is None:
            raise TypeError(f"metric {name!r} must be a number, not {type(value).__name__}")
        try:
            number = float(value)  # ints, bools, numpy scalars, 0-d tensors
        except (TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"metric {name!r} is not a finite number: {value!r}") from err
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} is not a finite number: {number}")
        out[name] = number
    return out


def _finite_scalars(values: Mapping[str, Any]) -> Dict[str, float]:
    """The entries of a framework's logs that keel takes as metrics (finite numbers, 0-d tensors),
    as floats; the others (strings, lists, NaN, multi-element tensors, ...) are left out."""
    out: Dict[str, float] = {}
    for name, value in values.items():
        if len(out) == _MAX_METRICS:
            break
        if not isinstance(name, str) or not 1 <= _utf16_len(name) <= _MAX_METRIC_NAME:
            continue
        if isinstance(value, (str, bytes)) or value is None:
            continue
        try:
            number = float(value)  # a CUDA tensor syncs here
        except Exception:  # noqa: BLE001 - not a scalar: not a metric
            continue
        if math.isfinite(number):
            out[name] = number
    return out


def _utf16_len(text: str) -> int:
    # keel counts JavaScript string length: UTF-16 code units.
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _after_fork_in_child() -> None:
    # A forked process (a DataLoader worker, say) must not write on its parent's socket: it gets
    # its own connection on its first call. Locks may have been held at the fork: new ones.
    _state.lock = threading.Lock()
    _state.conn = None
    _state.connected = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _reset_for_tests() -> None:
    """Forgets the connection and the stop flag, and restores SIGTERM (tests only)."""
    _uninstall_sigterm()
    conn = _state.conn
    if conn is not None and conn.pid == os.getpid():
        conn.close_for_tests()
    fresh = _State()
    _state.__dict__.update(fresh.__dict__)


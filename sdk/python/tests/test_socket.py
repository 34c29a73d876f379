"""The connection's edge cases that keel itself cannot be made to produce on demand: keel closing
the socket while a checkpoint waits, keel never answering, an `error` line, many threads sending
at once, a line over 1 MiB. The other end here is a plain Unix socket the test drives by hand;
everything keel really does is tested against keel in test_with_keel.py."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import keel_sdk as keel


class Peer:
    """keel's end of the socket, scripted: records the lines it gets, sends what it is told."""

    def __init__(self, path: str) -> None:
        self.close_delay = 0.0  # how long after the trainer's end keel takes to end its side
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.conn: socket.socket = None  # type: ignore[assignment]
        self.lines: List[Dict[str, Any]] = []
        self.garbled: List[bytes] = []  # lines that were not one JSON object
        self.eof = threading.Event()
        self._accepted = threading.Event()
        self._got_line = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.conn, _ = self.server.accept()
        self._accepted.set()
        buffered = b""
        while True:
            chunk = self.conn.recv(1 << 20)
            if not chunk:
                break
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            with self._got_line:
                for line in lines:
                    try:
                        self.lines.append(json.loads(line))
                    except ValueError:
                        self.garbled.append(line)
                self._got_line.notify_all()
        self.eof.set()
        time.sleep(self.close_delay)
        self.conn.close()  # as keel (Node, allowHalfOpen false) ends its side when the trainer ends its

    def wait_for(self, kind: str, count: int = 1, timeout: float = 5) -> List[Dict[str, Any]]:
        with self._got_line:
            ok = self._got_line.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        assert ok, f"no {count} {kind} line(s) within {timeout}s: {self.lines}"
        return self.of(kind)

    def of(self, kind: str) -> List[Dict[str, Any]]:
        return [m for m in self.lines if m.get("type") == kind]

    def send(self, message: Dict[str, Any]) -> None:
        assert self._accepted.wait(5)
        self.conn.sendall((json.dumps(message) + "\n").encode())

    def close(self) -> None:
        assert self._accepted.wait(5)
        self.conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, short_tmp: Path) -> Iterator[Peer]:
    path = str(short_tmp / "control.sock")
    p = Peer(path)
    monkeypatch.setenv("KEEL_CONTROL", path)
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("KEEL_SDK_SIGTERM", "0")  # leave pytest's own SIGTERM alone
    yield p
    p.server.close()


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
    """Runs fn in a thread; the dict gets 'result' or 'error', and 'thread'."""
    out: Dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001
            out["error"] = err

    out["thread"] = threading.Thread(target=target, daemon=True)
    out["thread"].start()
    return out


def test_hello_first_then_messages_in_order(peer: Peer) -> None:
    assert keel.attached() is True
    keel.report(1, {"loss": 0.5})
    keel.heartbeat()
    keel.heartbeat(2)
    peer.wait_for("heartbeat", 2)
    assert peer.lines[0] == {"type": "hello", "protocol": 1, "pid": os.getpid()}
    assert peer.lines[1:] == [
        {"type": "metric", "step": 1, "metrics": {"loss": 0.5}},
        {"type": "heartbeat"},
        {"type": "heartbeat", "step": 2},
    ]


def test_checkpoint_blocks_until_its_ack(peer: Peer) -> None:
    call = in_thread(keel.checkpoint, 5, "step-5", {"val": 1.0})
    sent = peer.wait_for("checkpoint")
    assert sent == [{"type": "checkpoint", "step": 5, "path": "step-5", "metrics": {"val": 1.0}}]
    time.sleep(0.2)
    assert call["thread"].is_alive(), "checkpoint() returned before keel answered"
    peer.send({"type": "ack", "step": 4})  # another step's answer does not release it
    time.sleep(0.1)
    assert call["thread"].is_alive()
    peer.send({"type": "ack", "step": 5})
    call["thread"].join(5)
    assert not call["thread"].is_alive()
    assert "error" not in call and call["result"] is None


def test_nack_raises_checkpoint_refused_with_keels_message(peer: Peer) -> None:
    call = in_thread(keel.checkpoint, 5, "/etc/passwd")
    peer.wait_for("checkpoint")
    peer.send({"type": "nack", "step": 5, "error": "/etc/passwd is outside the checkpoint folder"})
    call["thread"].join(5)
    err = call["error"]
    assert isinstance(err, keel.CheckpointRefused) and isinstance(err, keel.KeelError)
    assert str(err) == "/etc/passwd is outside the checkpoint folder" and err.step == 5


def test_socket_closed_while_waiting_raises_keel_error(peer: Peer, capsys: pytest.CaptureFixture[str]) -> None:
    call = in_thread(keel.checkpoint, 5, "step-5")
    peer.wait_for("checkpoint")
    peer.close()
    call["thread"].join(5)
    err = call["error"]
    assert type(err) is keel.KeelError and "closed" in str(err)
    assert "keel: the control socket closed" in capsys.readouterr().err


def test_when_keel_is_gone_the_trainer_is_told_to_stop(peer: Peer) -> None:
    # As the TS SDK: keel's worker died, so save locally and exit rather than hold the GPU.
    assert keel.attached()
    peer.close()
    assert peer.eof.wait(5)
    for _ in range(200):
        if keel.should_stop():
            break
        time.sleep(0.01)
    assert keel.stop_reason() == "keel disconnected"
    keel.report(7, {"loss": 1.0})  # dropped: the loop may go on to its save
    keel.heartbeat(7)
    with pytest.raises(keel.KeelError, match="cannot be staged"):
        keel.checkpoint(7, "step-7")
    keel.done({"loss": 1.0})  # nothing to tell: returns, the trainer exits 0


def test_checkpoint_timeout(peer: Peer) -> None:
    started = time.monotonic()
    with pytest.raises(keel.CheckpointTimeout, match="step 5"):
        keel.checkpoint(5, "step-5", timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 3
    # a late answer is ignored, and the next checkpoint still works
    peer.send({"type": "ack", "step": 5})
    call = in_thread(keel.checkpoint, 6, "step-6")
    peer.wait_for("checkpoint", 2)
    peer.send({"type": "ack", "step": 6})
    call["thread"].join(5)
    assert "error" not in call


def test_stop_message_sets_the_flag(peer: Peer) -> None:
    assert keel.should_stop() is False
    peer.send({"type": "stop", "reason": "preempt"})
    for _ in range(200):
        if keel.should_stop():
            break
        time.sleep(0.01)
    assert keel.should_stop() is True
    assert keel.stop_reason() == "preempt"


def test_a_stop_message_names_the_reason_over_sigterm(peer: Peer) -> None:
    assert keel.attached()
    keel._state.stop_reason = "SIGTERM"  # as the handler does: keel sends SIGTERM with the message
    peer.send({"type": "stop", "reason": "cancel"})
    for _ in range(200):
        if keel.stop_reason() == "cancel":
            break
        time.sleep(0.01)
    assert keel.stop_reason() == "cancel"


def test_error_lines_go_to_stderr(peer: Peer, capsys: pytest.CaptureFixture[str]) -> None:
    assert keel.attached()
    peer.send({"type": "error", "error": "bad message: metrics.loss: must be a finite number"})
    peer.send({"type": "stop", "reason": "cancel"})  # after the error: once seen, the error was printed
    for _ in range(200):
        if keel.should_stop():
            break
        time.sleep(0.01)
    assert "keel: bad message: metrics.loss: must be a finite number" in capsys.readouterr().err


def test_sends_from_many_threads_stay_whole_lines(peer: Peer) -> None:
    big = {f"metric_{i}": float(i) for i in range(200)}

    def work(n: int) -> None:
        for step in range(50):
            keel.report(step, {**big, "thread": float(n)})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peer.garbled == []
    metrics = peer.wait_for("metric", 400, timeout=10)
    assert peer.garbled == [] and len(metrics) == 400
    assert sorted(int(m["metrics"]["thread"]) for m in metrics) == sorted(list(range(8)) * 50)


def test_a_line_over_1_mib_is_refused_before_sending(peer: Peer) -> None:
    # The public calls cannot build one (keel's limits on paths and metrics keep lines far
    # below), so the connection's own send() is driven here.
    assert keel.attached()
    conn = keel._state.conn
    assert conn is not None
    with pytest.raises(ValueError, match="over keel's"):
        conn.send({"type": "metric", "step": 1, "metrics": {}, "pad": "p" * keel.MAX_LINE_BYTES})
    keel.report(2, {"ok": 1.0})
    assert peer.wait_for("metric") == [{"type": "metric", "step": 2, "metrics": {"ok": 1.0}}]


def test_done_sends_final_metrics_and_closes(peer: Peer) -> None:
    keel.report(1, {"loss": 0.5})
    started = time.monotonic()
    keel.done({"val_loss": 0.25})
    assert time.monotonic() - started < 2, "done() did not see keel close its end"
    assert peer.eof.wait(5), "the SDK did not close its end"
    assert peer.lines[-1] == {"type": "done", "metrics": {"val_loss": 0.25}}
    keel.done()  # a second done() does nothing
    with pytest.raises(keel.KeelError, match="done"):
        keel.report(2, {"loss": 0.1})


def test_done_returns_once_keel_has_read_everything(peer: Peer) -> None:
    peer.close_delay = 0.4
    keel.report(1, {"loss": 0.5})
    started = time.monotonic()
    keel.done({"val_loss": 0.25})
    assert time.monotonic() - started >= 0.35, "done() returned before keel ended its side"
    assert peer.eof.is_set() and peer.of("done") == [{"type": "done", "metrics": {"val_loss": 0.25}}]


def test_keel_control_that_cannot_be_reached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEEL_CONTROL", str(tmp_path / "nobody-listens.sock"))
    with pytest.raises(keel.KeelError, match="cannot connect"):
        keel.report(1, {"loss": 1.0})

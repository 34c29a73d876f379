"""save_async without keel (KEEL_CHECKPOINT_DIR set, no KEEL_CONTROL): the snapshot, the files it
writes, the bounded queue, errors surfaced on the next call, flushing, and what importing keel_sdk
imports. Against keel's real trainer side: test_with_keel.py. With torch: the end of this file."""

from __future__ import annotations

import collections
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

import keel_sdk as keel
from conftest import trainer_env


@pytest.fixture
def ckpt_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "ckpts"
    monkeypatch.setenv("KEEL_CHECKPOINT_DIR", str(folder))
    return folder


def load(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


class Gate:
    """A serializer that waits until opened (so saves stay pending), then pickles."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started: List[int] = []

    def __call__(self, obj: Any, path: str) -> None:
        self.started.append(obj["step"])
        assert self.opened.wait(10), "the gate was never opened"
        with open(path, "wb") as f:
            pickle.dump(obj, f)


@pytest.fixture
def gate() -> Iterator[Gate]:
    g = Gate()
    yield g
    g.opened.set()  # never leave the saver thread blocked for the next test


# --- pure Python state -----------------------------------------------------------------------


def test_pure_python_state_is_pickled_into_a_new_step_folder(ckpt_dir: Path) -> None:
    state = {"step": 7, "weights": [0.5, 1.5], "name": "mlp", "nested": {"lr": 0.01, "history": [(1, 2.0)]}}
    path = keel.save_async(state, 7, metrics={"loss": 0.25})
    assert path == str(ckpt_dir / "step-7" / "state.pkl")
    keel.wait_for_saves()
    assert load(path) == state
    assert sorted(os.listdir(ckpt_dir / "step-7")) == ["state.pkl"]  # no .partial left behind


class Box:
    """Some object of the trainer's own (deep-copied by the snapshot)."""

    def __init__(self) -> None:
        self.items = [1, 2]


def test_the_snapshot_is_taken_when_save_async_returns(ckpt_dir: Path, gate: Gate) -> None:
    state: Dict[str, Any] = {"step": 1, "list": [1, 2, 3], "dict": {"a": [1]}, "box": Box()}
    path = keel.save_async(state, 1, serializer=gate)
    # Training goes on and changes its state in place while the save is still pending.
    state["list"].append(4)
    state["dict"]["a"].append(2)
    state["box"].items.append(3)
    state["step"] = 2
    gate.opened.set()
    keel.wait_for_saves()
    saved = load(path)
    assert (saved["step"], saved["list"], saved["dict"], saved["box"].items) == (1, [1, 2, 3], {"a": [1]}, [1, 2])


def test_container_types_are_kept(ckpt_dir: Path) -> None:
    Point = collections.namedtuple("Point", "x y")
    counts: Dict[str, int] = collections.defaultdict(int)
    counts["a"] = 3
    state: Dict[str, Any] = {
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "point": Point(1, [2]),
        "tuple": (1, [2]),
        "counts": counts,
    }
    snap, has_tensors = keel.snapshot(state)
    assert has_tensors is False
    assert snap == state and snap is not state
    assert type(snap["ordered"]) is collections.OrderedDict and list(snap["ordered"]) == ["b", "a"]
    assert type(snap["point"]) is Point and snap["point"].y is not state["point"].y
    assert type(snap["tuple"]) is tuple and snap["tuple"][1] is not state["tuple"][1]
    assert isinstance(snap["counts"], collections.defaultdict) and snap["counts"]["new"] == 0


def test_path_name_and_a_serializer(ckpt_dir: Path) -> None:
    written: List[str] = []

    def write_text(obj: Any, path: str) -> None:
        written.append(path)
        Path(path).write_text(repr(obj))

    path = keel.save_async({"w": 1}, 3, path_name="weights.txt", serializer=write_text)
    keel.wait_for_saves()
    assert path == written[0] == str(ckpt_dir / "step-3" / "weights.txt")
    assert Path(path).read_text() == "{'w': 1}"
    assert keel.save_async({"w": 2}, 4, serializer=write_text).endswith("step-4/state")
    keel.wait_for_saves()


def test_path_name_empty_gives_the_serializer_the_folder_and_reports_it(ckpt_dir: Path) -> None:
    def write_files(obj: Any, folder: str) -> None:
        for name, value in obj.items():
            Path(folder, name).write_text(str(value))

    folder = keel.save_async({"model.txt": "m", "optim.txt": "o"}, 5, path_name="", serializer=write_files)
    keel.wait_for_saves()
    assert folder == str(ckpt_dir / "step-5")
    assert sorted(os.listdir(folder)) == ["model.txt", "optim.txt"]


def test_bad_arguments_raise_at_once_and_write_nothing(ckpt_dir: Path) -> None:
    with pytest.raises(ValueError, match="step"):
        keel.save_async({}, -1)
    with pytest.raises(TypeError, match="bool"):
        keel.save_async({}, True)
    with pytest.raises(ValueError, match="'loss'"):
        keel.save_async({}, 1, metrics={"loss": float("nan")})
    with pytest.raises(ValueError, match="plain file name"):
        keel.save_async({}, 1, path_name="../x.pkl")
    with pytest.raises(ValueError, match="needs a serializer"):
        keel.save_async({}, 1, path_name="")
    keel.wait_for_saves()
    assert not ckpt_dir.exists() or os.listdir(ckpt_dir) == []


# --- the bounded queue -----------------------------------------------------------------------


def test_save_async_blocks_while_two_saves_are_pending(ckpt_dir: Path, gate: Gate) -> None:
    started = time.monotonic()
    keel.save_async({"step": 1}, 1, serializer=gate)
    keel.save_async({"step": 2}, 2, serializer=gate)
    assert time.monotonic() - started < 2  # two pending saves: no wait
    third_returned = threading.Event()

    def third() -> None:
        keel.save_async({"step": 3}, 3, serializer=gate)
        third_returned.set()

    t = threading.Thread(target=third)
    t.start()
    assert not third_returned.wait(0.5), "the third save_async returned while two saves were pending"
    gate.opened.set()
    assert third_returned.wait(10)
    t.join()
    keel.wait_for_saves()
    assert gate.started == [1, 2, 3]  # written in the order of the calls
    assert [load(str(ckpt_dir / f"step-{n}" / "state"))["step"] for n in (1, 2, 3)] == [1, 2, 3]


def test_max_pending_saves_is_configurable(ckpt_dir: Path, gate: Gate) -> None:
    keel.configure(max_pending_saves=1)
    keel.save_async({"step": 1}, 1, serializer=gate)
    second_returned = threading.Event()

    def second() -> None:
        keel.save_async({"step": 2}, 2, serializer=gate)
        second_returned.set()

    t = threading.Thread(target=second)
    t.start()
    assert not second_returned.wait(0.5)
    gate.opened.set()
    assert second_returned.wait(10)
    t.join()
    keel.wait_for_saves()
    with pytest.raises(ValueError, match="max_pending_saves"):
        keel.configure(max_pending_saves=0)


def test_wait_for_saves_times_out_while_a_save_is_pending(ckpt_dir: Path, gate: Gate) -> None:
    keel.save_async({"step": 1}, 1, serializer=gate)
    with pytest.raises(keel.CheckpointTimeout, match="1 background save"):
        keel.wait_for_saves(timeout=0.2)
    gate.opened.set()
    keel.wait_for_saves(timeout=10)


# --- errors and flushing ---------------------------------------------------------------------


def failing(obj: Any, path: str) -> None:
    if obj["step"] == 3:
        raise OSError("disk full (a test)")
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.mark.parametrize(
    "next_call",
    [
        pytest.param(lambda: keel.save_async({"step": 4}, 4, serializer=failing), id="save_async"),
        pytest.param(lambda: keel.checkpoint(4, "x.pt"), id="checkpoint"),
        pytest.param(lambda: keel.wait_for_saves(), id="wait_for_saves"),
        pytest.param(lambda: keel.done(), id="done"),
    ],
)
def test_a_background_failure_is_raised_by_the_next_call_naming_its_step(
    ckpt_dir: Path, next_call: Callable[[], Any]
) -> None:
    keel.save_async({"step": 3}, 3, serializer=failing)
    deadline = time.monotonic() + 10
    while keel._saving._saver.pending and time.monotonic() < deadline:  # failed in the background
        time.sleep(0.01)
    with pytest.raises(keel.AsyncSaveError, match="save of step 3 failed: OSError: disk full") as raised:
        next_call()
    err = raised.value
    assert isinstance(err, keel.KeelError) and err.step == 3
    assert isinstance(err.__cause__, OSError)
    # raised once: the calls after it work
    keel.save_async({"step": 5}, 5, serializer=failing)
    keel.wait_for_saves()
    assert load(str(ckpt_dir / "step-5" / "state"))["step"] == 5


def test_checkpoint_and_done_wait_for_pending_saves_first(ckpt_dir: Path, gate: Gate) -> None:
    keel.save_async({"step": 1}, 1, serializer=gate)
    returned: List[str] = []

    def sync_checkpoint() -> None:
        keel.checkpoint(2, "step-2")  # locally a no-op, but only after step 1 is handed off
        returned.append("checkpoint")
        keel.done()
        returned.append("done")

    t = threading.Thread(target=sync_checkpoint)
    t.start()
    time.sleep(0.3)
    assert returned == []
    gate.opened.set()
    t.join(10)
    assert returned == ["checkpoint", "done"]
    assert (ckpt_dir / "step-1" / "state").is_file()


def run_script(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=trainer_env(env), timeout=60
    )


def test_saves_pending_at_exit_are_finished(tmp_path: Path) -> None:
    done = run_script(
        """
import pickle, time
import keel_sdk as keel
def slow(obj, path):
    time.sleep(0.5)
    with open(path, "wb") as f:
        pickle.dump(obj, f)
keel.save_async({"step": 9}, 9, serializer=slow)
print("exiting", flush=True)
""",
        KEEL_CHECKPOINT_DIR=str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    assert load(str(tmp_path / "step-9" / "state")) == {"step": 9}


def test_importing_keel_sdk_imports_no_framework() -> None:
    done = run_script(
        """
import sys
import keel_sdk
heavy = [m for m in ("torch", "numpy", "lightning", "pytorch_lightning", "transformers") if m in sys.modules]
print(heavy, callable(keel_sdk.save_async))
"""
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


@pytest.mark.parametrize(("module", "extra"), [("lightning", "lightning"), ("huggingface", "transformers")])
def test_an_integration_without_its_framework_names_the_extra(module: str, extra: str) -> None:
    # The framework is blocked in the subprocess (None in sys.modules), installed or not.
    done = run_script(
        f"""
import sys
for name in ("lightning", "lightning.pytorch", "pytorch_lightning", "transformers"):
    sys.modules[name] = None
try:
    import keel_sdk.{module}
except ImportError as err:
    print(err)
else:
    print("imported")
"""
    )
    assert done.returncode == 0, done.stderr
    assert f"pip install 'keel-sdk[{extra}]'" in done.stdout, done.stdout


# --- numpy and torch, when installed ----------------------------------------------------------


def test_numpy_arrays_are_copied(ckpt_dir: Path) -> None:
    np = pytest.importorskip("numpy")
    weights = np.arange(4.0)
    path = keel.save_async({"weights": weights}, 1)
    weights[:] = -1  # in place, as an optimizer step does
    keel.wait_for_saves()
    assert path.endswith("state.pkl")
    assert load(path)["weights"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_torch_state_is_copied_to_cpu_and_written_with_torch_save(ckpt_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()  # the optimizer's state now holds tensors (exp_avg, exp_avg_sq, step)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1}
    snap, has_tensors = keel.snapshot(state)
    assert has_tensors is True
    for name, tensor in state["model"].items():
        assert torch.equal(snap["model"][name], tensor)
        assert snap["model"][name].data_ptr() != tensor.data_ptr()  # a copy, not a view
    moment = state["optimizer"]["state"][0]["exp_avg"]
    assert snap["optimizer"]["state"][0]["exp_avg"].data_ptr() != moment.data_ptr()

    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = keel.save_async(state, 1, metrics={"loss": 1.0})
    with torch.no_grad():
        model.weight.add_(100.0)  # training goes on in place
    keel.wait_for_saves()
    assert path.endswith("step-1/state.pt")
    saved = torch.load(path, weights_only=True)
    assert torch.equal(saved["model"]["weight"], before["weight"])
    assert not saved["model"]["weight"].requires_grad
    assert saved["optimizer"]["param_groups"][0]["lr"] == 0.1
    assert torch.equal(saved["optimizer"]["state"][0]["exp_avg"], moment)

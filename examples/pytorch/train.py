#!/usr/bin/env python3
"""A real PyTorch trainer that speaks keel's trainer protocol through keel_sdk (sdk/python).

    python examples/pytorch/train.py                            # alone: defaults, ./checkpoints
    KEEL_PARAMS='{"learning_rate":0.01,"width":256}' python examples/pytorch/train.py
    python examples/pytorch/train.py --save-async               # checkpoints written in the background

An MLP (``depth`` hidden layers of ``width`` units, ReLU, dropout) trained with AdamW on a
classification set made offline: 5-arm noisy 2-D spirals generated from ``data_seed`` (default), or
scikit-learn's 8x8 digits (``"dataset": "digits"``, needs scikit-learn). CUDA when present, else
CPU. Under keel (``KEEL_CONTROL`` set) it reports metrics and checkpoints, resumes from
``KEEL_RESUME_FROM`` (model, optimizer, every RNG, the step, the loss window) and saves a final
checkpoint when keel stops it or SIGTERM arrives. Alone it does the same locally. With
``save_async`` (the param, or ``--save-async``) each checkpoint is a snapshot in CPU memory that
keel_sdk.save_async writes and hands to keel in a background thread while training goes on.

The last line on stdout is the result, as JSON: the final metrics and the sha256 of the weights.
Exit codes: 0 done or stopped, 1 an error (an unusable checkpoint, divergence, a refused
checkpoint), 2 bad params or PyTorch missing, 3 the injected failure (``fail_at_step``).

See README.md beside this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

try:
    import keel_sdk as keel
except ImportError:  # run from a checkout without PYTHONPATH: use the repository's SDK
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "sdk", "python", "src"))
    import keel_sdk as keel

FORMAT = "keel-example-pytorch/1"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
# Under keel, say something (a heartbeat if nothing else) at least this often during slow steps.
HEARTBEAT_SECONDS = 1.0


class ParamError(Exception):
    """A bad param or a missing dependency: exit 2 before anything is written."""


class InjectedFailure(Exception):
    """params.fail_at_step: exit 3 (attempt 1 only)."""


def log(message: str) -> None:
    print(f"pytorch: {message}", file=sys.stderr, flush=True)


# --- params ----------------------------------------------------------------------------------

# Every param and its default; parse_params checks them. `steps` or `epochs` (not both).
DEFAULTS: Dict[str, Any] = {
    "seed": 0,
    "learning_rate": 3e-3,
    "width": 128,
    "depth": 2,
    "dropout": 0.1,
    "weight_decay": 1e-4,
    "batch_size": 128,
    "steps": 1500,
    "epochs": None,
    "checkpoint_every": 500,
    "eval_every": 100,
    "report_every": 10,
    "dataset": "spirals",
    "data_seed": 0,
    "train_size": 4000,
    "val_size": 1000,
    "device": "auto",
    "deterministic": True,
    "fail_at_step": None,
    "step_delay_ms": 0,
    "save_async": False,
}
ALIASES = {"lr": "learning_rate", "hidden": "width", "hidden_size": "width"}


def _int(name: str, value: Any, low: int, high: int, optional: bool = False) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ParamError(f"{name} must be an integer, not {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ParamError(f"{name} must be from {low} to {high}, not {value}")
    return value


def _float(name: str, value: Any, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParamError(f"{name} must be a finite number, not {value!r}")
    value = float(value)
    if value < low or value > high or (low_open and value == low) or (high_open and value == high):
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ParamError(f"{name} must be in {lo}{low}, {high}{hi}, not {value}")
    return value


def parse_params(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The params with defaults filled in; ParamError names the first bad one."""
    given: Dict[str, Any] = {}
    spelled: Dict[str, str] = {}
    for key, value in raw.items():
        name = ALIASES.get(key, key)
        if name not in DEFAULTS:
            known = ", ".join(sorted(DEFAULTS))
            raise ParamError(f"unknown param {key!r} (known: {known}; aliases: lr, hidden, hidden_size)")
        if name in given:
            raise ParamError(f"{spelled[name]!r} and {key!r} are the same param: give one")
        given[name], spelled[name] = value, key
    p = {**DEFAULTS, **given}
    p["seed"] = _int("seed", p["seed"], 0, 2**31 - 1)
    p["learning_rate"] = _float("learning_rate", p["learning_rate"], 0.0, 10.0, low_open=True)
    p["width"] = _int("width", p["width"], 1, 16384)
    p["depth"] = _int("depth", p["depth"], 1, 16)
    p["dropout"] = _float("dropout", p["dropout"], 0.0, 1.0, high_open=True)
    p["weight_decay"] = _float("weight_decay", p["weight_decay"], 0.0, 10.0)
    p["batch_size"] = _int("batch_size", p["batch_size"], 1, 1 << 20)
    p["checkpoint_every"] = _int("checkpoint_every", p["checkpoint_every"], 0, 10**9)
    p["eval_every"] = _int("eval_every", p["eval_every"], 1, 10**9)
    p["report_every"] = _int("report_every", p["report_every"], 1, 10**9)
    if p["dataset"] not in ("spirals", "digits"):
        raise ParamError(f"dataset must be 'spirals' or 'digits', not {p['dataset']!r}")
    p["data_seed"] = _int("data_seed", p["data_seed"], 0, 2**31 - 1)
    p["train_size"] = _int("train_size", p["train_size"], 10, 10**7)
    p["val_size"] = _int("val_size", p["val_size"], 10, 10**7)
    if p["device"] not in ("auto", "cpu", "cuda"):
        raise ParamError(f"device must be 'auto', 'cpu' or 'cuda', not {p['device']!r}")
    if not isinstance(p["deterministic"], bool):
        raise ParamError(f"deterministic must be true or false, not {p['deterministic']!r}")
    p["fail_at_step"] = _int("fail_at_step", p["fail_at_step"], 1, 10**9, optional=True)
    p["step_delay_ms"] = _int("step_delay_ms", p["step_delay_ms"], 0, 60_000)
    if not isinstance(p["save_async"], bool):
        raise ParamError(f"save_async must be true or false, not {p['save_async']!r}")
    if p["epochs"] is not None:
        if "steps" in given:
            raise ParamError("give steps or epochs, not both")
        p["epochs"] = _int("epochs", p["epochs"], 1, 10**6)
        # resolved into steps once the training set's size is known
    else:
        p["steps"] = _int("steps", p["steps"], 1, 10**9)
    return p


# --- data --------------------------------------------------------------------------------------


def spirals(n: int, rng: random.Random, classes: int = 5) -> Tuple[List[List[float]], List[int]]:
    """Noisy interleaved spirals: `classes` arms, 1.25 turns each; the noise makes arms overlap,
    so the best accuracy is well below 100% and capacity and regularization matter."""
    xs: List[List[float]] = []
    ys: List[int] = []
    for i in range(n):
        k = i % classes
        t = rng.random()
        r = 0.1 + t
        angle = 2 * math.pi * (k / classes + 1.25 * t) + rng.gauss(0.0, 0.18)
        xs.append([r * math.cos(angle) + rng.gauss(0.0, 0.03), r * math.sin(angle) + rng.gauss(0.0, 0.03)])
        ys.append(k)
    return xs, ys


def load_data(p: Dict[str, Any], torch: Any) -> Tuple[Any, Any, Any, Any, int]:
    """(x_train, y_train, x_val, y_val, classes) as CPU tensors, the same bits on every run.

    The data are made in pure Python (random.Random, math), so they do not depend on the torch
    version or the device."""
    rng = random.Random(p["data_seed"])
    if p["dataset"] == "spirals":
        x_train, y_train = spirals(p["train_size"], rng)
        x_val, y_val = spirals(p["val_size"], rng)
        classes = 5
    else:
        try:
            from sklearn.datasets import load_digits  # ships its data: no download
        except ImportError as err:
            raise ParamError(
                f'dataset "digits" needs scikit-learn ({err}); use "spirals" or pip install scikit-learn'
            ) from None
        digits = load_digits()
        rows = [[float(v) / 16.0 for v in row] for row in digits.data.tolist()]
        labels = [int(v) for v in digits.target.tolist()]
        order = list(range(len(rows)))
        rng.shuffle(order)
        n_val = len(rows) // 5
        x_val, y_val = [rows[i] for i in order[:n_val]], [labels[i] for i in order[:n_val]]
        x_train, y_train = [rows[i] for i in order[n_val:]], [labels[i] for i in order[n_val:]]
        classes = 10
    as_x = lambda rows: torch.tensor(rows, dtype=torch.float32)  # noqa: E731
    as_y = lambda labels: torch.tensor(labels, dtype=torch.long)  # noqa: E731
    return as_x(x_train), as_y(y_train), as_x(x_val), as_y(y_val), classes


# --- the run -----------------------------------------------------------------------------------


def import_torch(p: Dict[str, Any]) -> Any:
    if p["deterministic"]:
        # cuBLAS is deterministic only with a fixed workspace; it must be set before CUDA starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    try:
        import torch
    except ImportError as err:
        raise ParamError(
            f"this example needs PyTorch, and 'import torch' failed ({err}). "
            "Install it (pip install torch) in the Python that runs the trainer"
        ) from None
    return torch


def pick_device(p: Dict[str, Any], torch: Any) -> Any:
    wanted = p["device"]
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ParamError("device 'cuda' was asked for, but torch.cuda.is_available() is False")
    if wanted == "cpu" or (wanted == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda")


def weights_sha256(model: Any) -> str:
    """sha256 over every tensor of the model's state dict: its name, dtype, shape and raw bytes."""
    return state_dict_sha256(model.state_dict())


def state_dict_sha256(state_dict: Dict[str, Any]) -> str:
    """weights_sha256 of a state dict (the model's, or a CPU snapshot of it: the same bytes)."""
    h = hashlib.sha256()
    for name, tensor in state_dict.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        flat = t.reshape(-1)
        try:
            h.update(flat.numpy().tobytes())
        except (RuntimeError, TypeError):  # no numpy: slower, same bytes
            import torch

            h.update(bytes(flat.view(torch.uint8).tolist()))
    return h.hexdigest()


def rng_state(torch: Any, device: Any) -> Dict[str, Any]:
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        "python": random.getstate(),
        "numpy": None,
    }
    np = sys.modules.get("numpy")
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = [kind, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
    return state


def set_rng_state(torch: Any, device: Any, state: Dict[str, Any]) -> bool:
    """Restores every RNG; False when the CUDA state could not be (another device kind)."""
    torch.set_rng_state(state["torch"])
    random.setstate(_tuples(state["python"]))
    np = sys.modules.get("numpy")
    if np is not None and state.get("numpy") is not None:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    exact = True
    if device.type == "cuda":
        saved = state.get("cuda")
        if saved and len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)
        elif saved:
            torch.cuda.set_rng_state(saved[0])
        else:
            exact = False
    elif state.get("cuda"):
        exact = False
    return exact


def _tuples(value: Any) -> Any:
    # random.setstate wants the tuples it gave, and a checkpoint may hold lists.
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A PyTorch trainer on keel; its params come from KEEL_PARAMS.")
    parser.add_argument(
        "--save-async",
        action="store_true",
        help="the same as the param save_async: write checkpoints in the background (keel_sdk.save_async)",
    )
    return parser.parse_args(argv)


def main(argv: List[str]) -> int:
    started = time.time()
    args = parse_args(argv)  # bad arguments: argparse exits 2
    raw = keel.params()  # KEEL_PARAMS; {} when run by hand
    if args.save_async:
        raw = {**raw, "save_async": True}
    p = parse_params(raw)
    torch = import_torch(p)
    import torch.nn.functional as F
    from torch import nn

    device = pick_device(p, torch)
    if p["deterministic"] and device.type == "cuda":
        # The ops used here are deterministic on the CPU already; on CUDA this makes PyTorch pick
        # deterministic kernels where it has both, and warn (not fail) for an op that has only a
        # nondeterministic one (PyTorch lists NLLLoss on CUDA). gpu_check.sh checks the result.
        # Skipped on the CPU: it imports torch._dynamo (~2 s).
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    on_gpu = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if on_gpu else "cpu"
    log(f"device {device.type} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    x_train, y_train, x_val, y_val, classes = load_data(p, torch)
    steps_per_epoch = max(1, x_train.shape[0] // p["batch_size"])
    if p["epochs"] is not None:
        p["steps"] = p["epochs"] * steps_per_epoch
    if p["batch_size"] > x_train.shape[0]:
        raise ParamError(f"batch_size {p['batch_size']} is larger than the training set ({x_train.shape[0]} rows)")
    x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))

    # Everything random starts from the seed; the model is made on the CPU, so the initial weights
    # are the same on every device.
    torch.manual_seed(p["seed"])
    random.seed(p["seed"])
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(p["seed"])
    layers: List[Any] = []
    width_in = x_train.shape[1]
    for _ in range(p["depth"]):
        layers += [nn.Linear(width_in, p["width"]), nn.ReLU(), nn.Dropout(p["dropout"])]
        width_in = p["width"]
    layers.append(nn.Linear(width_in, classes))
    model = nn.Sequential(*layers).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"])

    step = 0
    window_sum = torch.zeros((), dtype=torch.float32, device=device)  # training loss since the last report
    window_count = 0
    resume = keel.resume_from()
    if resume is not None:
        state, folder = load_checkpoint(resume, torch)
        check_resumable(state, p, resume.step, folder)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the params win over the checkpoint's (see check_resumable)
            group.update(lr=p["learning_rate"], weight_decay=p["weight_decay"])
        if not set_rng_state(torch, device, state["rng"]):
            log(f"resuming a checkpoint made on {state['device']} on {device.type}: dropout draws differ from there on")
        step = state["step"]
        window_sum = state["loss_window"]["sum"].to(device)
        window_count = state["loss_window"]["count"]
        log(f"resumed from {folder} at step {step}")
    last_saved = step if resume is not None else -1

    perm_cache: Dict[int, Any] = {}

    def batch_for(s: int) -> Any:
        """The rows of step s (1-based): a function of (seed, s) alone, so a resumed run draws the
        same batches. Each epoch is a fresh permutation; the last partial batch is dropped."""
        epoch, pos = divmod(s - 1, steps_per_epoch)
        if epoch not in perm_cache:
            perm_cache.clear()
            g = torch.Generator().manual_seed((p["seed"] * 1_000_003 + epoch) % (2**63))
            perm_cache[epoch] = torch.randperm(x_train.shape[0], generator=g).to(device)
        return perm_cache[epoch][pos * p["batch_size"] : (pos + 1) * p["batch_size"]]

    def evaluate(x: Any, y: Any) -> Tuple[float, float]:
        model.eval()
        with torch.no_grad():
            logits = model(x)
            loss = F.cross_entropy(logits, y).item()
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        model.train()
        return loss, accuracy

    def validate() -> Dict[str, float]:
        loss, accuracy = evaluate(x_val, y_val)
        return {"val_loss": loss, "val_acc": accuracy}

    said_at = time.monotonic()

    def write_checkpoint(state: Dict[str, Any], folder: str) -> None:
        """Writes state.pt and meta.json into a checkpoint folder. In the training loop (a plain
        save), or in keel_sdk's background thread (save_async: then `state` is its CPU snapshot)."""
        began = time.time()
        # Written under a temporary name and renamed: state.pt is complete once it exists.
        tmp = os.path.join(folder, STATE_FILE + ".partial")
        torch.save(state, tmp)
        os.replace(tmp, os.path.join(folder, STATE_FILE))
        meta = {"format": FORMAT, "step": state["step"], "metrics": state["metrics"]}
        meta.update(weightsSha256=state_dict_sha256(state["model"]), device=state["device"])
        meta.update(torch=torch.__version__, params=state["params"])
        with open(os.path.join(folder, META_FILE), "w") as f:
            json.dump(meta, f, indent=1)
        if p["save_async"]:
            written = time.time()
            log(f"checkpoint step-{state['step']} written in the background ({written - began:.3f}s)")
            timing(step=state["step"], mode="async", written=written)

    def save(metrics: Dict[str, float]) -> None:
        nonlocal last_saved, said_at
        t0, began = time.monotonic(), time.time()
        state = {
            "format": FORMAT,
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(torch, device),
            "loss_window": {"sum": window_sum.detach().cpu(), "count": window_count},
            "params": p,
            "device": device.type,
            "metrics": metrics,
        }
        if p["save_async"]:
            # A snapshot in CPU memory now: the loop waits only for the copy. keel_sdk's background
            # thread writes it into a new step folder, then reports it, while training goes on.
            try:
                keel.save_async(state, step, path_name="", metrics=metrics, serializer=write_checkpoint)
            except keel.KeelError:  # an earlier background save failed
                if keel.stop_reason() != "keel disconnected":
                    raise
                log(f"keel is gone: checkpoint step-{step} is not saved")
            handed = time.monotonic()
            log(f"checkpoint step-{step}: snapshot {handed - t0:.3f}s; written and handed off in the background")
        else:
            folder = keel.new_checkpoint_path(step)  # <checkpoint dir>/step-<N>/, new and empty
            write_checkpoint(state, folder)
            saved = time.monotonic()
            try:
                keel.checkpoint(step, folder, metrics)  # returns once keel has staged it (hard link)
            except keel.KeelError:
                if keel.stop_reason() != "keel disconnected":
                    raise
                log(f"keel is gone: checkpoint {folder} stays local")
            handed = time.monotonic()
            where = "staged by keel" if keel.attached() else "saved"
            log(f"checkpoint step-{step} {where} (save {saved - t0:.3f}s, hand-off {1000 * (handed - saved):.1f}ms)")
        # For gpu_check.sh: when the loop stopped for this checkpoint and when it went on (epoch seconds).
        timing(step=step, mode="async" if p["save_async"] else "sync", start=began, resume=time.time())
        last_saved = step
        said_at = handed

    def flush_saves() -> None:
        """Waits until every save_async checkpoint has been written and handed to keel."""
        try:
            keel.wait_for_saves()
        except keel.KeelError:
            if keel.stop_reason() != "keel disconnected":
                raise
            log("keel is gone: the last checkpoints stay local")

    model.train()
    loop_started, first_step = time.monotonic(), step
    while step < p["steps"]:
        if keel.should_stop():  # keel's stop message or SIGTERM: finish here, save, exit 0
            break
        s = step + 1
        rows = batch_for(s)
        logits = model(x_train[rows])
        loss = F.cross_entropy(logits, y_train[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step = s
        window_sum += loss.detach()
        window_count += 1
        if step == p["fail_at_step"] and keel.attempt() == 1:
            raise InjectedFailure(f"injected failure at step {step} (params.fail_at_step, attempt 1)")

        last = step == p["steps"]
        checkpoint_due = last or (p["checkpoint_every"] > 0 and step % p["checkpoint_every"] == 0)
        metrics: Dict[str, float] = {}
        if step % p["report_every"] == 0 or last:
            mean = (window_sum / window_count).item()  # the only host sync of an ordinary step
            if not math.isfinite(mean):
                raise RuntimeError(f"training diverged at step {step} (loss {mean}); try a smaller learning_rate")
            metrics.update(loss=mean, lr=optimizer.param_groups[0]["lr"])
            window_sum.zero_()
            window_count = 0
        val = validate() if step % p["eval_every"] == 0 or checkpoint_due else None
        if val:
            metrics.update(val)
        if metrics:
            keel.report(step, metrics)
            said_at = time.monotonic()
            if keel.attached():  # into keel's trainer log, as report() prints them when run alone
                print(f"step {step}: {json.dumps(metrics)}", file=sys.stderr, flush=True)
        if checkpoint_due:
            save(val or validate())

        if p["step_delay_ms"]:
            wake = time.monotonic() + p["step_delay_ms"] / 1000
            while not keel.should_stop() and time.monotonic() < wake:
                time.sleep(min(0.1, max(0.0, wake - time.monotonic())))
                if keel.attached() and time.monotonic() - said_at > HEARTBEAT_SECONDS:
                    keel.heartbeat(step)
                    said_at = time.monotonic()
        if keel.attached() and time.monotonic() - said_at > HEARTBEAT_SECONDS:
            keel.heartbeat(step)
            said_at = time.monotonic()

    stopped = keel.stop_reason() if step < p["steps"] else None
    if stopped is not None and step != last_saved and step > 0:
        metrics = validate()
        keel.report(step, metrics)
        save(metrics)
    flush_saves()  # before the result line: a failed background save fails the run
    train_loss, train_acc = evaluate(x_train, y_train)
    final = {"step": step, "train_loss": train_loss, "train_acc": train_acc, **validate()}
    result: Dict[str, Any] = {"final": final, "weightsSha256": weights_sha256(model), "device": device.type}
    if stopped is not None:
        result["stopped"] = stopped
    steps_run, loop_seconds = step - first_step, time.monotonic() - loop_started
    result["seconds"] = round(time.time() - started, 3)
    result["stepsPerSecond"] = round(steps_run / loop_seconds, 1) if steps_run and loop_seconds > 0 else None
    # The sha256 is not a number, so it is no metric: it goes on stdout with the metrics.
    print(json.dumps(result), flush=True)
    keel.done(final)
    return 0


def timing(**fields: Any) -> None:
    print(f"pytorch: checkpoint-timing {json.dumps(fields)}", file=sys.stderr, flush=True)


def load_checkpoint(resume: Any, torch: Any) -> Tuple[Dict[str, Any], str]:
    """The state in a checkpoint folder (or its state.pt), as keel restored it or a person named it."""
    path = resume.path
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(keel.checkpoint_dir(), path)  # reported as relative to the checkpoint dir
    path = os.path.abspath(path)
    file = os.path.join(path, STATE_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise RuntimeError(f"cannot resume: {file} does not exist (KEEL_RESUME_FROM={resume.path})")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RuntimeError(f"cannot resume: {file} is not a {FORMAT} checkpoint")
    return state, os.path.dirname(file)


def check_resumable(state: Dict[str, Any], p: Dict[str, Any], step: int, folder: str) -> None:
    if state["step"] != step:
        raise RuntimeError(f"checkpoint {folder} is at step {state['step']}, but KEEL_RESUME_STEP is {step}")
    trained = state["params"]
    for name in ("width", "depth", "dataset", "data_seed", "train_size", "val_size"):
        if trained.get(name) != p[name]:
            raise RuntimeError(
                f"cannot resume: the checkpoint has {name}={trained.get(name)!r}, the params {p[name]!r}"
            )
    # Allowed, but the run then differs from an uninterrupted one: say so. (steps may change freely.)
    for name in ("seed", "learning_rate", "dropout", "weight_decay", "batch_size"):
        if trained.get(name) != p[name]:
            log(f"resuming with {name}={p[name]!r}; the checkpoint was trained with {trained.get(name)!r}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ParamError as err:
        log(f"cannot start: {err}")
        sys.exit(2)
    except InjectedFailure as err:
        log(str(err))
        sys.exit(3)
    except keel.CheckpointRefused as err:
        log(f"keel refused the checkpoint of step {err.step}: {err}")
        sys.exit(1)
    except keel.AsyncSaveError as err:  # a save_async checkpoint failed (or keel refused it)
        log(str(err))
        sys.exit(1)

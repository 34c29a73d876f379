"""Shared fixtures: the SDK (sdk/python/src) on sys.path, a clean SDK state and environment per
test, and a runner for keel's real trainer side (run_with_keel.ts under Node, from scripts/bootstrap.sh's tools)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

TESTS = Path(__file__).resolve().parent
SDK = TESTS.parent  # sdk/python: pyproject.toml, README.md, src/, tests/
SDK_SRC = SDK / "src"  # the import root: what PYTHONPATH names for trainers run from a checkout
REPO = SDK.parent.parent
HARNESS = TESTS / "run_with_keel.ts"
TRAINER = TESTS / "trainers" / "trainer.py"

sys.path.insert(0, str(SDK_SRC))

import keel_sdk  # noqa: E402

KEEL_VARS = (
    "KEEL_PROTOCOL",
    "KEEL_JOB_ID",
    "KEEL_ATTEMPT",
    "KEEL_PARAMS",
    "KEEL_CHECKPOINT_DIR",
    "KEEL_RESUME_FROM",
    "KEEL_RESUME_STEP",
    "KEEL_CONTROL",
    "KEEL_SDK_SIGTERM",
)


@pytest.fixture(autouse=True)
def clean_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts outside keel, with no connection and no stop flag."""
    for name in KEEL_VARS:
        monkeypatch.delenv(name, raising=False)
    keel_sdk._reset_for_tests()
    yield
    keel_sdk._reset_for_tests()


def trainer_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a trainer subprocess: this one, without keel's variables, SDK on the path."""
    env = {k: v for k, v in os.environ.items() if k not in KEEL_VARS}
    env["PYTHONPATH"] = str(SDK_SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path: a Unix socket's path must stay under 108 bytes."""
    base = tempfile.gettempdir()
    folder = Path(tempfile.mkdtemp(prefix="kpy-", dir=base if len(base) <= 40 else "/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def node() -> str:
    """Node from .keel/tools.env (scripts/bootstrap.sh). Missing tools fail the tests, loudly."""
    tools = REPO / ".keel" / "tools.env"
    if not tools.is_file():
        pytest.fail(f"keel's tools are not set up ({tools} is missing): run 'npm run setup' once", pytrace=False)
    found = subprocess.run(
        ["bash", str(REPO / "scripts" / "with-tools.sh"), "which", "node"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    path = found.stdout.strip()
    if found.returncode != 0 or not path:
        pytest.fail(f"no node in keel's tools: {found.stderr.strip()}", pytrace=False)
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    if (major, minor) < (22, 18):
        pytest.fail(f"{path} is Node {version}; the harness needs >= 22.18 (run 'npm run setup')", pytrace=False)
    return path


class KeelRun:
    """What run_with_keel.ts printed: keel's view of the attempt, and the trainer's EVENT lines."""

    def __init__(self, summary: Dict[str, Any]) -> None:
        self.summary = summary
        self.events: List[Dict[str, Any]] = [
            json.loads(line[len("EVENT ") :]) for line in summary["log"].splitlines() if line.startswith("EVENT ")
        ]

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def event(self, key: str, value: Any = None) -> Dict[str, Any]:
        """The first event with `key` (equal to value, when given)."""
        for e in self.events:
            if key in e and (value is None or e[key] == value):
                return e
        raise AssertionError(f"no event {key}={value!r} in the trainer's output:\n{self.summary['log']}")


@pytest.fixture
def run_keel(node: str, short_tmp: Path):  # type: ignore[no-untyped-def]
    """Runs tests/trainers/trainer.py under keel's launchTrainer with the given params and options."""

    def run(params: Dict[str, Any], **options: Any) -> KeelRun:
        python = os.environ.get("KEEL_SDK_TEST_PYTHON") or sys.executable
        config = {
            "command": [python, str(TRAINER)],
            "attemptDir": str(short_tmp / "attempt"),
            "params": params,
            "env": {"PYTHONPATH": str(SDK_SRC), "PYTHONUNBUFFERED": "1"},
            **options,
        }
        return run_harness(node, config, timeout=60)

    return run


def run_framework_trainer(
    node: str, trainer: Path, attempt_dir: Path, params: Dict[str, Any], **options: Any
) -> KeelRun:
    """A Lightning or Hugging Face test trainer under keel, with room for importing torch."""
    config = {
        "command": [sys.executable, str(trainer)],
        "attemptDir": str(attempt_dir),
        "params": params,
        "env": {"PYTHONPATH": str(SDK_SRC), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
        "timeoutMs": 240_000,
        "progressTimeoutMs": 120_000,  # importing torch and a framework takes a while on a small machine
        "stopGraceMs": 60_000,
        **options,
    }
    return run_harness(node, config, timeout=300)


def staged_steps(run: KeelRun) -> list:
    return [s["step"] for s in run["staged"]]


@pytest.fixture(scope="module")
def module_tmp() -> Iterator[Path]:
    """A short temporary folder shared by a module's tests (socket paths stay under 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="kfw-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_harness(node: str, config: Dict[str, Any], timeout: float) -> KeelRun:
    """Runs tests/run_with_keel.ts (keel's real launch code) with ``config``; its summary."""
    done = subprocess.run(
        [node, str(HARNESS), json.dumps(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=trainer_env(),
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"run_with_keel.ts failed ({done.returncode}):\n{done.stderr}\n{done.stdout}")
    return KeelRun(json.loads(done.stdout))

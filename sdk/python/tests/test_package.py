"""sdk/python is an installable package: `pip install sdk/python` into a fresh virtual environment,
then `import keel_sdk` there (not from this checkout) has the whole API, its type marker and its
extras, and no runtime dependency."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from conftest import SDK


@pytest.fixture(scope="module")
def venv_python() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="keel-sdk-venv-"))
    try:
        # pip builds in the source tree (egg-info, build/): install from a copy, not the checkout.
        source = root / "src"
        shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
        subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
        python = root / "venv" / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        # As a user would: pip fetches setuptools from PyPI for an isolated build. Offline, the
        # build can only use what the venv has (setuptools and wheel: older Pythons' venvs).
        tries = [["--retries", "1", "--timeout", "20"], ["--no-build-isolation", "--no-index"]]
        failures = []
        for options in tries:
            done = subprocess.run([*pip, *options, str(source)], capture_output=True, text=True, timeout=300)
            if done.returncode == 0:
                break
            failures.append(f"pip install {' '.join(options)} sdk/python failed:\n{done.stdout}\n{done.stderr}")
        else:
            pytest.fail("\n\n".join(failures), pytrace=False)
        yield python
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_in(python: Path, code: str) -> str:
    # From an empty folder and without PYTHONPATH: only the installed package can be imported.
    with tempfile.TemporaryDirectory() as cwd:
        env = {"PATH": "/usr/bin:/bin"}
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pip_install_gives_an_importable_keel_sdk_with_save_async(venv_python: Path) -> None:
    out = run_in(
        venv_python,
        """
import os, sys, keel_sdk
assert keel_sdk.__file__.startswith(sys.prefix), keel_sdk.__file__   # the venv's copy
assert callable(keel_sdk.save_async) and callable(keel_sdk.wait_for_saves)
missing = [name for name in keel_sdk.__all__ if not hasattr(keel_sdk, name)]
assert not missing, missing
assert os.path.isfile(os.path.join(os.path.dirname(keel_sdk.__file__), "py.typed"))
print(keel_sdk.__version__)
""",
    )
    assert out == run_in(venv_python, "import keel_sdk; print(keel_sdk.__version__)") != ""


def test_the_package_has_no_runtime_dependency_and_its_extras(venv_python: Path) -> None:
    out = run_in(
        venv_python,
        """
from importlib.metadata import metadata, requires
meta = metadata("keel-sdk")
print(sorted(meta.get_all("Provides-Extra")))
print(meta["Requires-Python"])
print([r for r in (requires("keel-sdk") or []) if "extra ==" not in r])
""",
    )
    assert out.splitlines() == ["['lightning', 'torch', 'transformers']", ">=3.9", "[]"]


def test_installed_integrations_say_which_extra_to_install(venv_python: Path) -> None:
    # The fresh venv has neither lightning nor transformers.
    out = run_in(
        venv_python,
        """
for module in ("lightning", "huggingface"):
    try:
        __import__("keel_sdk." + module)
    except ImportError as err:
        print(err)
""",
    )
    lightning, huggingface = out.splitlines()
    assert lightning.startswith("keel_sdk.lightning needs PyTorch Lightning: pip install 'keel-sdk[lightning]'")
    assert huggingface.startswith(
        "keel_sdk.huggingface needs Hugging Face transformers: "
        "pip install 'keel-sdk[transformers]'"
    )

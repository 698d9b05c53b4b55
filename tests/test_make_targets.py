"""Every `make` command the README shows exists and does what it says (dry runs, or a cheap real run)."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def readme_make_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = {m.group(1).strip() for m in re.finditer(r"`(make [^`]+)`", text)}
    found |= {m.group(1).strip() for m in re.finditer(r"^(make [a-z-]+(?: [A-Z_]+=\S*)*)", text, re.M)}
    return [shlex.split(" ".join(c.split())) for c in sorted(found)]


def _make(*args: str, dry: bool = True) -> subprocess.CompletedProcess:
    cmd = ["make", "--no-print-directory", *(["-n"] if dry else []), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_readme_shows_make_commands():
    names = {c[1] for c in readme_make_commands()}
    assert {"lab", "test", "test-unit", "test-notebook", "notebooks", "benchmark"} <= names


@pytest.mark.parametrize("cmd", readme_make_commands(), ids=lambda c: " ".join(c))
def test_every_readme_make_command_is_a_target(cmd):
    # `make -n` prints the recipe without running it; an unknown target fails with "No rule to make target".
    res = _make(*cmd[1:])
    assert res.returncode == 0, res.stderr
    assert "No rule to make target" not in res.stderr


def test_test_notebook_selects_existing_tests():
    # The real thing, collect-only: the paths exist and the selection is not empty.
    if not (ROOT / ".venv" / ".installed").is_file():
        pytest.skip("no .venv made by `make venv` here")
    res = _make("test-notebook", "NB=00", "PYTEST_ARGS=--collect-only -q -p no:cacheprovider", dry=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "00_getting_started.ipynb" in res.stdout
    assert not re.search(r"\b0 tests? collected|no tests ran", res.stdout)


def test_test_notebook_without_nb_says_how():
    res = _make("test-notebook", dry=False)
    assert res.returncode != 0 and "NB=01" in res.stdout + res.stderr

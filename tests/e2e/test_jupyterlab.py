"""JupyterLab in a real (headless) browser: run notebooks as a student would.

The test installs what it needs from the package registries (Debian's
``chromium``, npm's ``playwright-core``) when missing, starts JupyterLab on a
free localhost port with a token, opens each notebook, runs all cells through
the Run menu, and checks: no error outputs, plots rendered as images, and for
notebooks with widgets, that a slider appears and moving it changes what is
shown. Screenshots go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
PLAYWRIGHT_VERSION = "1.65.1"
# (notebook, has a widget slider to move)
NOTEBOOKS = [("00_getting_started.ipynb", False), ("01_cnn_building_blocks.ipynb", True)]

pytestmark = pytest.mark.e2e


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Chromium is missing and cannot be installed here (needs root and apt-get): "
                    "install Debian's `chromium` package to run the browser tests.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env, timeout=600)
    res = _run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, timeout=900)
    path = shutil.which("chromium")
    assert path, f"installing chromium failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    return path


@pytest.fixture(scope="session")
def node_modules() -> Path:
    if not shutil.which("npm"):
        pytest.skip("node/npm are missing: install Node.js to run the browser tests.")
    prefix = ROOT / ".cache" / "e2e"
    target = prefix / "node_modules" / "playwright-core"
    if not target.is_dir():
        prefix.mkdir(parents=True, exist_ok=True)
        res = _run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                    f"playwright-core@{PLAYWRIGHT_VERSION}"], timeout=600)
        assert target.is_dir(), f"npm install playwright-core failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    return prefix / "node_modules"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of the notebooks; stopped at the end, also on failure."""
    work = tmp_path_factory.mktemp("lab")
    for name, _ in NOTEBOOKS:
        if (ROOT / "notebooks" / name).is_file():
            shutil.copy(ROOT / "notebooks" / name, work / name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "COURSE_FAST": "1", "COURSE_PROGRESS": "0", "JUPYTER_PLATFORM_DIRS": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--notebook-dir={work}", "--allow-root",
           "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate"]
    log = open(work / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
            if proc.poll() is not None:
                raise RuntimeError("JupyterLab exited:\n" + (work / "lab.log").read_text()[-3000:])
        else:
            raise RuntimeError("JupyterLab did not start in 120 s")
        yield {"base": base, "token": token, "dir": work}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.parametrize("name,slider", NOTEBOOKS, ids=[n for n, _ in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(name, slider, lab, chromium, node_modules):
    if not (ROOT / "notebooks" / name).is_file():
        pytest.skip(f"{name} does not exist yet")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cmd = ["node", str(HERE / "lab_driver.mjs"), lab["base"], lab["token"], name, str(ARTIFACTS)]
    if slider:
        cmd.append("--slider")
    env = {**os.environ, "NODE_PATH": str(node_modules), "CHROMIUM": chromium}
    # ESM resolves packages from the script's folder upwards: link node_modules beside a copy
    driver_dir = node_modules.parent / "driver"
    driver_dir.mkdir(exist_ok=True)
    shutil.copy(HERE / "lab_driver.mjs", driver_dir / "lab_driver.mjs")
    cmd[1] = str(driver_dir / "lab_driver.mjs")
    res = _run(cmd, env=env, timeout=900)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"driver printed nothing:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    seen = json.loads(lines[-1])
    assert not seen["errors"], seen["errors"]
    assert not seen["timedOut"], "the notebook did not finish running in the browser"
    assert seen["images"] > 0, "no plot was rendered as an image"
    executed = nbformat.read(lab["dir"] / name, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"error outputs: {[e.get('ename') + ': ' + e.get('evalue', '') for e in errors]}"
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code"), "a cell did not run"
    assert (ARTIFACTS / f"{Path(name).stem}_notebook.png").is_file()
    if slider:
        assert seen["sliders"] > 0, "no ipywidgets slider appeared"
        assert seen["sliderChanged"], "moving the slider did not change the displayed output"

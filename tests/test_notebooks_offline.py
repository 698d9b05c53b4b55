"""Notebooks that must also run on a fresh machine with no data at all.

nbval executes every notebook with the configured data directory (CI points
it at real faces). These tests run the face notebooks once more with an
empty data directory, proving the embedded defaults work offline.
"""

from pathlib import Path

import nbformat
import pytest

from course_tools.nbtools import headless_client

ROOT = Path(__file__).resolve().parents[1]
# Each notebook also proves one missing-extra fallback: the environment variables
# make the installed pretrained packages count as missing (as on a machine
# without the `faces` or `imagenet` extra), and the notebook must say so.
OFFLINE_NOTEBOOKS = {
    "03_transfer_learning.ipynb": {"COURSE_DISABLE_IMAGENET": "1"},
    "04_siamese_triplet.ipynb": {},  # the real recogniser on whatever data is embedded
    "05_embedding_visualization.ipynb": {"COURSE_DISABLE_FACES": "1", "COURSE_DISABLE_IMAGENET": "1"},
    "06_fairface_bias.ipynb": {"COURSE_DISABLE_FACES": "1"},
}


@pytest.mark.notebook
@pytest.mark.parametrize("name", sorted(OFFLINE_NOTEBOOKS))
def test_notebook_runs_with_an_empty_data_dir(name, tmp_path, monkeypatch):
    path = ROOT / "notebooks" / name
    if not path.is_file():
        pytest.skip(f"{name} does not exist yet")
    empty = tmp_path / "empty_data"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(empty))
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    for key, value in OFFLINE_NOTEBOOKS[name].items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    headless_client(nb, path=path.parent, timeout=900).execute()
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # the fallback announces itself, naming what it replaces
    assert "SynthFaces" in outputs or "embedded" in outputs.lower()
    for key in OFFLINE_NOTEBOOKS[name]:  # and a disabled extra is named, with what to do about it
        assert key in outputs or "pip install" in outputs, f"{name} did not say that {key} turned a model off"

"""The Colab snippet and badges."""

from pathlib import Path

from course_utils import colab


def test_badge_url_points_at_the_notebook():
    url = colab.badge_url("01_x.ipynb", repo_url="https://github.com/a/b", branch="dev")
    assert url == "https://colab.research.google.com/github/a/b/blob/dev/notebooks/01_x.ipynb"
    assert colab.badge_url("01_x.ipynb") in colab.badge_markdown("01_x.ipynb")


def test_apply_inserts_then_refreshes(tmp_path, monkeypatch):
    script = tmp_path / "05_demo.py"
    script.write_text("# %% [markdown]\n# Title\n\n# %%\nimport torch\n")
    assert colab.apply(script) is True
    text = script.read_text()
    assert text.index(colab.install_snippet()) < text.index("import torch")
    assert colab.apply(script) is False  # idempotent
    monkeypatch.setattr(colab, "REPO_URL", "https://github.com/other/place")
    assert colab.apply(script) is True
    text = script.read_text()
    assert "other/place" in text and text.count("google.colab") == 1


def test_apply_needs_a_code_cell(tmp_path):
    script = tmp_path / "x.py"
    script.write_text("# %% [markdown]\n# only prose\n")
    try:
        colab.apply(script)
    except ValueError as err:
        assert "code cell" in str(err)
    else:
        raise AssertionError("expected ValueError")

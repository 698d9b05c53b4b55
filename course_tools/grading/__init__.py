"""Releasing student copies and grading submissions in a sandbox.

- ``spec``     the exercise metadata format; reading a submission
- ``release``  student notebooks, the standalone student bundle, experiment ranges
- ``sandbox``  bubblewrap / container / (unsafe) plain-process runner with limits
- ``runner``   the sandbox side: runs setup, solutions and probes, writes plain outputs
- ``checks``   hidden tests: probes, and host-side checks of their outputs
- ``grader``   the host side: extraction, AST checks, comparison, batches, reports
- ``cli``      ``course-release`` and ``course-grade``
"""

__all__: list[str] = []

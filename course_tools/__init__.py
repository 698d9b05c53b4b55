"""course_tools: the instructor's authoring tools (not needed by students).

- ``grading``  student releases, the sandboxed grader, hidden tests, experiment ranges
"""

__all__: list[str] = []

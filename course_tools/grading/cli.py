"""Command lines: ``course-release``, ``course-grade`` and ``python -m course_tools.grading``.

    course-release [--source notebooks] [--out student] [--bundle DIR --repo-url URL] [--experiments]
    course-release --check
    course-grade SUBMISSION.ipynb ... [--out grades] [--roster roster.csv] [--workers N]
                 [--sandbox auto|bwrap|docker|podman] [--unsafe-no-sandbox] [--timeout S] [--cpu S] [--memory GIB]

``python -m course_tools.grading release|check-release|grade ...`` (and the
older ``python -m course_utils.assignments ...``) take the same options.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["grade_main", "main", "release_main"]


def _release_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--source", default="notebooks", help="instructor notebooks (NN_name.py)")
    parser.add_argument("--out", default="student", help="where the student notebooks go")
    parser.add_argument("--check", action="store_true", help="only check that --out is up to date (exit 1 if not)")
    parser.add_argument("--bundle", help="also write a standalone student repository to this folder")
    parser.add_argument("--repo-url", default="", help="address the bundle is published under (Colab badges)")
    parser.add_argument("--experiments", action="store_true",
                        help="run the instructor's experiments (3 seeds, sandboxed) and store their ranges")
    parser.add_argument("--experiments-out", default="grading/experiments")
    return parser


def _grade_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("submissions", nargs="+", help="submitted .ipynb files")
    parser.add_argument("--source", default="notebooks", help="instructor notebooks (NN_name.py)")
    parser.add_argument("--hidden", default="grading/hidden", help="hidden tests (NN_name.py)")
    parser.add_argument("--experiments", default="grading/experiments", help="experiment ranges (NN_name.json)")
    parser.add_argument("--notebook", help="grade every submission against this instructor notebook")
    parser.add_argument("--out", default="grades", help="reports go to OUT/<notebook>/<student>.json|csv")
    parser.add_argument("--roster", help="CSV with columns student_id,path")
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--sandbox", default="auto", choices=["auto", "bwrap", "docker", "podman"])
    parser.add_argument("--image", default="course-grader", help="container image (docker/podman)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true",
                        help="grade without isolation when no sandbox exists (trusted submissions only)")
    parser.add_argument("--timeout", type=float, default=240, help="wall-clock seconds per submission")
    parser.add_argument("--cpu", type=int, default=300, help="CPU seconds per submission")
    parser.add_argument("--memory", type=float, default=2.0, help="GiB of data segment per submission")
    parser.add_argument("--processes", type=int, default=512, help="processes and threads of the sandbox user")
    parser.add_argument("--full", action="store_true", help="grade in full mode instead of fast mode")
    return parser


def _release(args: argparse.Namespace) -> int:
    from course_tools.grading.release import check_release, release, write_bundle, write_experiment_ranges

    if args.check:
        stale = check_release(args.source, args.out)
        if stale:
            print("Out of date: " + ", ".join(stale) + ". Run: course-release")
            return 1
        print("student copies are up to date")
        return 0
    for path in release(args.source, args.out):
        print(f"wrote {path}")
    if args.bundle:
        root = Path(args.source).resolve().parent
        print(f"wrote the student bundle {write_bundle(args.bundle, root=root, repo_url=args.repo_url)}")
    if args.experiments:
        from course_tools.grading.grader import GradeConfig

        for path in write_experiment_ranges(args.source, args.experiments_out, config=GradeConfig()):
            print(f"wrote {path}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from course_tools.grading.grader import GradeConfig, grade_batch
    from course_tools.grading.sandbox import GIB, Limits, SandboxUnavailable

    limits = Limits(cpu_s=args.cpu, data_bytes=int(args.memory * GIB), processes=args.processes,
                    wall_s=args.timeout)
    config = GradeConfig(source=Path(args.source), hidden=Path(args.hidden), experiments=Path(args.experiments),
                         backend=None if args.sandbox == "auto" else args.sandbox, unsafe=args.unsafe_no_sandbox,
                         limits=limits, workers=args.workers, fast=not args.full, image=args.image)
    t0 = time.perf_counter()
    try:
        reports = grade_batch(args.submissions, config=config, out=args.out, roster=args.roster,
                              notebook=args.notebook)
    except SandboxUnavailable as err:
        print(f"refusing to grade: {err}", file=sys.stderr)
        return 2
    for r in reports:
        print(f"{r.student:20s} {r.notebook:28s} {r.score}/{r.total} ({r.fraction:.0%})  {r.seconds:.1f} s")
        for x in r.results:
            if not x.passed:
                print(f"    FAIL {x.exercise:24s} {x.message[:140]}")
        for note in r.notes:
            print(f"    note: {note[:160]}")
    print(f"{len(reports)} submission(s) graded in {time.perf_counter() - t0:.0f} s; reports in {args.out}/")
    return 0 if reports and all(r.score == r.total for r in reports) else 1


def release_main(argv: Sequence[str] | None = None) -> int:
    """``course-release``."""
    parser = _release_parser(argparse.ArgumentParser(prog="course-release", description=__doc__,
                                                     formatter_class=argparse.RawDescriptionHelpFormatter))
    return _release(parser.parse_args(argv))


def grade_main(argv: Sequence[str] | None = None) -> int:
    """``course-grade``."""
    parser = _grade_parser(argparse.ArgumentParser(prog="course-grade", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return _grade(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None, prog: str = "python -m course_tools.grading") -> int:
    """``release``, ``check-release`` and ``grade`` as sub-commands."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _release_parser(sub.add_parser("release", help="write the student copies (and bundle, experiment ranges)"))
    _release_parser(sub.add_parser("check-release", help="exit 1 if the student copies are out of date"))
    _grade_parser(sub.add_parser("grade", help="grade submissions in a sandbox"))
    args = parser.parse_args(argv)
    if args.command == "check-release":
        args.check = True
    return _grade(args) if args.command == "grade" else _release(args)


if __name__ == "__main__":
    sys.exit(main())

"""Time the sandboxed grader on a generated class: blank, solved, partial and hostile submissions.

    python benchmarks/bench_grading.py [--notebook 00] [--n 100] [--workers 2] [--out /tmp/bench-grades]

Writes the submissions to a temporary folder, grades them with ``grade_batch``
(the same code as ``course-grade``) and prints the wall time, the load
average and the score distribution per kind of submission.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_tools.grading.grader import GradeConfig, grade_batch
from course_tools.grading.release import student_notebook
from course_tools.grading.sandbox import Limits
from course_tools.nbtools import notebook_scripts, notebook_text, read_script

HOSTILE = [
    "get_ipython().input_transformers_cleanup.append(lambda lines: [])",
    "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
    "import os\nos.system('echo 0 > /work/main/notebooks/pwned.txt')",
    "block = bytearray(3 * 1024**3)",
    "while True:\n    pass",
    "exec(open('/work/main/notebooks/00_getting_started.py').read())",
    "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
    "import socket\nsocket.create_connection(('127.0.0.1', 8888), 2)",
]


def generate(script: Path, folder: Path, n: int) -> dict[str, str]:
    """``n`` submissions: 25 % blank, 30 % solved, 25 % partial, 20 % hostile; their kinds by file stem."""
    solution = read_script(script)
    blank = student_notebook(solution)
    sol_cells = {c.metadata["exercise"]: c.source for c in solution.cells
                 if "solution" in c.metadata.get("tags", []) and c.metadata.get("exercise")}
    kinds = {}
    for i in range(n):
        nb = student_notebook(solution)
        frac = i / n
        if frac < 0.25:
            kind = "blank"
            nb = blank
        elif frac < 0.55:
            kind = "solved"
            for c in nb.cells:
                if c.metadata.get("exercise") in sol_cells and "solution" in c.metadata.get("tags", []):
                    c.source = sol_cells[c.metadata["exercise"]]
        elif frac < 0.80:
            kind = "partial"
            ids = list(sol_cells)
            keep = ids[: 1 + i % max(1, len(ids) - 1)]
            for c in nb.cells:
                if c.metadata.get("exercise") in keep and "solution" in c.metadata.get("tags", []):
                    c.source = sol_cells[c.metadata["exercise"]]
        else:
            kind = "hostile"
            trick = HOSTILE[i % len(HOSTILE)]
            for c in nb.cells:
                if "solution" in c.metadata.get("tags", []) and c.metadata.get("exercise"):
                    c.source = trick + "\n\n" + sol_cells[c.metadata["exercise"]]
                    break
        path = folder / f"{script.stem}_s{i:03d}.ipynb"
        path.write_text(notebook_text(nb), encoding="utf-8")
        kinds[path.stem] = kind
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebook", default="00")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    script = next(s for s in notebook_scripts(ROOT / "notebooks") if s.name.startswith(args.notebook))
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp) / "subs"
        folder.mkdir()
        kinds = generate(script, folder, args.n)
        config = GradeConfig(source=ROOT / "notebooks", hidden=ROOT / "grading" / "hidden",
                             experiments=ROOT / "grading" / "experiments", workers=args.workers,
                             limits=Limits(wall_s=args.timeout))
        load0 = os.getloadavg()
        t0 = time.perf_counter()
        reports = grade_batch(sorted(folder.glob("*.ipynb")), config=config, out=args.out or Path(tmp) / "grades")
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()
        cpu = sum(r.cpu_seconds for r in reports)  # as measured inside each sandbox
    by_kind = collections.defaultdict(list)
    for r in reports:
        by_kind[kinds[Path(r.submission).stem]].append(r)
    print(f"{len(reports)} submissions of {script.stem} graded in {wall:.0f} s with {args.workers} workers "
          f"on {os.cpu_count()} CPUs; load average before {load0[0]:.1f}, after {load1[0]:.1f}")
    print(f"CPU time of the sandboxed processes: {cpu:.0f} s ({cpu / len(reports):.1f} s per submission); "
          f"on {args.workers} idle cores that is at least {cpu / args.workers:.0f} s of wall time, plus the time "
          "limits that endless loops run into")
    for kind, rs in sorted(by_kind.items()):
        scores = collections.Counter(f"{r.score}/{r.total}" for r in rs)
        secs = sorted(r.seconds for r in rs)
        print(f"  {kind:8s} n={len(rs):3d} scores={dict(scores)} seconds median={secs[len(secs) // 2]:.1f} "
              f"max={secs[-1]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Grade submissions: the host side.

For each submission the host (and only the host) reads the ``.ipynb`` as
data, takes out the student's solution cells (by exercise id), refuses
forbidden references by AST, and sends one job to the sandbox: the
notebook's setup code, the student's helpers and solutions, and the hidden
probes. The sandbox returns plain outputs; the host compares them with the
reference solution's outputs (computed once per notebook and batch, in a
separate clean sandboxed process) and with the hidden tests' own expected
values and properties, and writes the reports. Nothing the student's code
prints, patches or returns can mark an exercise as passed.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course_tools.grading.checks import HiddenTests, load_hidden
from course_tools.grading.release import stub_solution
from course_tools.grading.sandbox import Limits, Sandbox, SandboxUnavailable, backend_works, detect_backend
from course_tools.grading.spec import (
    Exercise,
    exercises,
    extract_submission,
    notebook_aliases,
    setup_code,
)
from course_tools.nbtools import read_script
from course_utils.selfcheck import forbidden_uses, import_aliases

__all__ = [
    "ExerciseResult",
    "GradeConfig",
    "GradeReport",
    "NotebookSpec",
    "grade_batch",
    "grade_submission",
    "load_spec",
    "make_sandbox",
    "reference_outputs",
    "student_ids",
]

RUNNER = Path(__file__).with_name("runner.py")
MAX_NOTEBOOK_BYTES = 20 * 1024**2
MAX_RESULTS_BYTES = 20 * 1024**2


@dataclass(frozen=True)
class GradeConfig:
    """Where the instructor material is and how submissions run."""

    source: Path = Path("notebooks")
    hidden: Path = Path("grading/hidden")
    experiments: Path = Path("grading/experiments")
    backend: str | None = None
    unsafe: bool = False
    limits: Limits = field(default_factory=Limits)
    workers: int = max(1, os.cpu_count() or 1)
    fast: bool = True
    image: str = "course-grader"


@dataclass(frozen=True)
class NotebookSpec:
    """Everything the grader needs about one instructor notebook."""

    name: str
    exercises: tuple[Exercise, ...]
    solutions: dict[str, str]
    setup: tuple[str, ...]
    aliases: dict[str, str]
    hidden: HiddenTests
    ranges: dict[str, dict]
    instructor: nbformat.NotebookNode
    stubs: dict[str, str] = field(default_factory=dict)

    def forbid(self, exercise: Exercise) -> tuple[str, ...]:
        return tuple(dict.fromkeys(exercise.forbid + self.hidden.forbid.get(exercise.id, ())))


@dataclass
class ExerciseResult:
    """The outcome of one exercise."""

    exercise: str
    points: int
    score: int
    passed: bool
    message: str = ""
    interpretation: str = ""


@dataclass
class GradeReport:
    """All exercises of one submission."""

    notebook: str
    submission: str
    student: str = ""
    results: list[ExerciseResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(r.score for r in self.results)

    @property
    def total(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def fraction(self) -> float:
        return self.score / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"notebook": self.notebook, "student": self.student, "submission": self.submission,
                "score": self.score, "total": self.total, "fraction": round(self.fraction, 4),
                "seconds": round(self.seconds, 1), "cpu_seconds": round(self.cpu_seconds, 1), "notes": self.notes, "exercises": [asdict(r) for r in self.results]}

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``<student>.json`` and ``<student>.csv``; an existing report is never overwritten."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = self.student or Path(self.submission).stem
        k = 1
        while True:
            name = stem if k == 1 else f"{stem}-{k}"
            jpath, cpath = out_dir / f"{name}.json", out_dir / f"{name}.csv"
            try:
                with jpath.open("x", encoding="utf-8") as fh:
                    fh.write(json.dumps(self.to_dict(), indent=2) + "\n")
                break
            except FileExistsError:
                k += 1
        with cpath.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["notebook", "student", "exercise", "points", "score", "passed", "message"])
            for r in self.results:
                writer.writerow([self.notebook, self.student, r.exercise, r.points, r.score, r.passed, r.message])
        return jpath, cpath


# --------------------------------------------------------------------------
# set-up
# --------------------------------------------------------------------------

def make_sandbox(config: GradeConfig) -> Sandbox:
    """The sandbox the configuration asks for; ``SandboxUnavailable`` when none can isolate."""
    import course_utils
    from course_utils.settings import get_settings

    backend = config.backend or detect_backend()
    if not backend_works(backend):
        raise SandboxUnavailable(f"the {backend} sandbox cannot run here (bubblewrap missing or without "
                                 "namespaces, or no docker/podman daemon); see docs/instructor_guide.md")
    if backend == "none" and not config.unsafe:
        raise SandboxUnavailable(
            "no sandbox available: install bubblewrap (`apt-get install bubblewrap`) or run a docker/podman "
            "daemon. Grading without isolation lets student code read the solutions and write anywhere; "
            "pass --unsafe-no-sandbox only for submissions you trust.")
    if backend == "none":
        print("WARNING: grading WITHOUT a sandbox (--unsafe-no-sandbox): student code runs with your rights.",
              file=sys.stderr)
    data_dir = get_settings().data_dir
    read_only = tuple(dict.fromkeys(str(Path(p).resolve()) for p in (
        sys.prefix, sys.base_prefix, Path(course_utils.__file__).parent, data_dir) if Path(p).exists()))
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "COURSE_FAST": "1" if config.fast else "0", "COURSE_CACHE_DIR": "/tmp/course-cache",
           "COURSE_DATA_DIR": str(Path(data_dir).resolve()), "COURSE_PROGRESS": "0",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0", "NUMBA_CACHE_DIR": "/tmp/numba"}
    return Sandbox(backend, limits=config.limits, read_only=read_only, env=tuple(env.items()), image=config.image)


def instructor_script(submission_name: str, source: Path) -> Path:
    """The instructor notebook whose ``NN_`` prefix starts the submission's file name."""
    m = re.match(r"(\d\d)_", submission_name)
    matches = sorted(source.glob(f"{m.group(1)}_*.py")) if m else []
    if not matches:
        raise FileNotFoundError(f"no instructor notebook in {source} for {submission_name!r} "
                                "(file names start with the notebook's NN_ prefix; or pass --notebook)")
    return matches[0]


def load_spec(script: str | Path, config: GradeConfig) -> NotebookSpec:
    """Read an instructor notebook, its hidden tests and its experiment ranges."""
    script = Path(script)
    nb = read_script(script) if script.suffix == ".py" else nbformat.read(script, as_version=4)
    exs = tuple(exercises(nb))
    solutions = {e.id: "\n\n".join(nb.cells[i].source for i in e.solution_cells) for e in exs}
    ranges_file = Path(config.experiments) / f"{script.stem}.json"
    ranges = json.loads(ranges_file.read_text()) if ranges_file.is_file() else {}
    stubs = {e.id: "\n\n".join(stub_solution(nb.cells[i].source) for i in e.solution_cells) for e in exs}
    return NotebookSpec(script.stem, exs, solutions, tuple(setup_code(nb)), notebook_aliases(nb),
                        load_hidden(Path(config.hidden) / f"{script.stem}.py"), ranges, nb, stubs)


def _job(spec: NotebookSpec, solutions: dict[str, str], helpers: Sequence[tuple[str, str]] = (), *,
         experiments: bool = True) -> dict:
    entries = []
    for ex in spec.exercises:
        if ex.id not in solutions or (ex.experiment and not experiments):
            continue
        entry = {"id": ex.id, "solution": solutions[ex.id], "timeout": ex.timeout}
        if ex.experiment:
            entry["experiment"] = [ex.experiment.value]
        elif ex.id in spec.hidden.probes:
            entry["probe_name"], entry["probe"] = spec.hidden.probes[ex.id]
        entries.append(entry)
    return {"setup": list(spec.setup), "helpers": [{"name": n, "code": c} for n, c in helpers], "exercises": entries}


GRACE_S = 5.0


def _parse(text: str) -> list[dict]:
    records = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _run_job(sandbox: Sandbox, job: dict) -> tuple[list[dict], str, str | None]:
    """Run a job in a fresh working copy.

    Returns the records it wrote, a note on how it ended ("" when it finished),
    and the id of the step it was stopped in when that step overran its own
    time limit (an exercise that ignored the in-sandbox alarm, or a helper).
    """
    work = Path(tempfile.mkdtemp(prefix="course-grade-"))
    results = work / "results.jsonl"
    seen: dict[str, float] = {}
    overran: list[str] = []

    def overrunning() -> bool:
        """The host-side deadline: the step that started last has run past its timeout plus a grace."""
        try:
            with results.open("rb") as fh:
                fh.seek(max(0, results.stat().st_size - 65536))
                lines = fh.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return False
        for line in reversed(lines):
            rec = _parse(line)
            if not rec or rec[0].get("kind") not in ("start", "exercise", "helper", "setup", "done"):
                continue
            rec = rec[0]
            if rec.get("kind") != "start":
                return False
            key = str(rec.get("id"))
            first = seen.setdefault(key, time.perf_counter())
            limit = float(rec.get("timeout", 60)) if isinstance(rec.get("timeout"), (int, float)) else 60.0
            if time.perf_counter() - first > limit + GRACE_S:
                overran.append(key)
                return True
            return False
        return False

    try:
        shutil.copy(RUNNER, work / "runner.py")
        (work / "job.json").write_text(json.dumps(job), encoding="utf-8")
        results.write_text("", encoding="utf-8")
        res = sandbox.run(work, ["runner.py", "job.json", "results.jsonl"], stop=overrunning)
        text = results.read_text(encoding="utf-8", errors="replace")[:MAX_RESULTS_BYTES] if results.is_file() else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)
    records = [r for r in _parse(text) if r.get("kind") != "start"]
    if res.stopped and overran:
        return records, "", overran[-1]
    if res.timed_out:
        ending = f"the submission hit the wall-clock limit of {sandbox.limits.wall_s:.0f} s and was stopped"
    elif not any(r.get("kind") == "done" for r in records):
        tail = (res.stderr.strip().splitlines() or [""])[-1][:300]
        ending = f"the sandboxed process ended early (exit status {res.returncode}; {tail or 'no message'})"
    else:
        ending = ""
    return records, ending, None


def reference_outputs(spec: NotebookSpec, sandbox: Sandbox) -> dict[str, dict]:
    """The instructor solutions' probe outputs, from a clean sandboxed run (raises if one fails)."""
    records, ending, overran = _run_job(sandbox, _job(spec, spec.solutions, experiments=False))
    out, errors = {}, [f"{overran}: ran past its time limit"] if overran else []
    for rec in records:
        if rec.get("kind") in ("setup", "helper") and rec.get("error"):
            errors.append(f"setup: {rec['error']}")
        if rec.get("kind") == "exercise":
            if rec.get("error"):
                errors.append(f"{rec['id']}: {rec['error']}")
            else:
                out[rec["id"]] = rec.get("outputs") or {}
    missing = [e.id for e in spec.exercises if not e.experiment and e.id in spec.hidden.probes and e.id not in out]
    for ex_id, outputs in out.items():
        for key, value in outputs.items():
            for check in spec.hidden.checks(ex_id, key):
                why = check.failure(value, value)
                if why:
                    errors.append(f"{ex_id}.{key}: {why}")
        unknown = set(spec.hidden.expect.get(ex_id, {})) - set(outputs)
        errors += [f"{ex_id}.{k}: EXPECT names an output the probe does not return" for k in sorted(unknown)]
    if errors or missing:
        raise RuntimeError(f"the reference solution of {spec.name} fails its hidden tests: "
                           f"{'; '.join(errors) or ending or missing}")
    return out


# --------------------------------------------------------------------------
# one submission
# --------------------------------------------------------------------------

def _literal(source: str, name: str):
    """The last literal value assigned to ``name`` at the top level of ``source`` (``None`` if none)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    value = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                value = None
    return value


def _score_exercise(ex: Exercise, spec: NotebookSpec, rec: dict | None, ref: dict | None,
                    source: str) -> ExerciseResult:
    def fail(message: str, interpretation: str = "") -> ExerciseResult:
        return ExerciseResult(ex.id, ex.points, 0, False, message, interpretation)

    if rec is None:
        return fail("")
    if ex.experiment:
        exp = ex.experiment
        text = _literal(source, exp.interpretation)
        text = text.strip() if isinstance(text, str) else ""
        if rec.get("error"):
            return fail(rec["error"], text)
        value = (rec.get("outputs") or {}).get(exp.value)
        rng = spec.ranges.get(ex.id)
        if rng is None:
            return fail(f"no release range for experiment {ex.id!r}: run `course-release --experiments`", text)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return fail(f"`{exp.value}` should hold a number (got {value!r:.80})", text)
        low, high = rng["low"] - exp.tolerance, rng["high"] + exp.tolerance
        if not low <= value <= high:
            return fail(f"`{exp.value}` = {value:.4g} is outside the range of the reference runs "
                        f"(within {exp.tolerance:g})", text)
        if len(text.split()) < exp.min_words:
            return fail(f"the interpretation (`{exp.interpretation}`, a string) needs at least "
                        f"{exp.min_words} words", text)
        return ExerciseResult(ex.id, ex.points, ex.points, True, f"{exp.value} = {value:.4g}", text)
    if rec.get("error"):
        return fail(rec["error"])
    outputs = rec.get("outputs")
    if ex.id not in spec.hidden.probes:
        return fail("no hidden tests for this exercise (grading/hidden): ask the instructor")
    if not isinstance(outputs, dict) or not isinstance(ref, dict):
        return fail("the hidden checks returned nothing")
    problems = []
    for key, expected in ref.items():
        if key not in outputs:
            problems.append(f"{key}: no output")
            continue
        for check in spec.hidden.checks(ex.id, key):
            why = check.failure(outputs[key], expected)
            if why:
                problems.append(f"{key}: {why}")
                break
    if problems:
        return fail(f"hidden checks failed ({len(problems)} of {len(ref)}): " + "; ".join(problems[:4]))
    return ExerciseResult(ex.id, ex.points, ex.points, True, f"{len(ref)} hidden checks passed")


def _helpers_used(source: str, helpers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The carried-over helpers that ``source`` uses, directly or through other helpers."""
    by_name = dict(helpers)
    used: dict[str, str] = {}
    todo = [source]
    while todo:
        try:
            tree = ast.parse(todo.pop())
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in by_name and node.id not in used:
                used[node.id] = by_name[node.id]
                todo.append(by_name[node.id])
    return list(used.items())


def grade_submission(path: str | Path, spec: NotebookSpec, reference: dict[str, dict], sandbox: Sandbox, *,
                     student: str = "") -> GradeReport:
    """Grade one submission; whatever it contains, the report says what happened."""
    path = Path(path)
    t0 = time.perf_counter()
    report = GradeReport(spec.name, str(path), student or path.stem)

    def zero(reason: str) -> GradeReport:
        report.notes.append(reason)
        report.results = [ExerciseResult(e.id, e.points, 0, False, reason) for e in spec.exercises]
        report.seconds = time.perf_counter() - t0
        return report

    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return zero(f"the file is larger than {MAX_NOTEBOOK_BYTES // 1024**2} MiB")
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
        if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
            return zero("not a Jupyter notebook (no list of cells)")
    except (OSError, ValueError) as err:
        return zero(f"not a readable notebook: {type(err).__name__}: {str(err)[:200]}")

    extraction = extract_submission(spec.instructor, data)
    report.notes += extraction.general
    # names bound anywhere in the student's code count as aliases (an import in one cell, a use in another)
    aliases = dict(spec.aliases)
    for code in [*extraction.solutions.values(), *(c for _, c in extraction.helpers)]:
        aliases.update(import_aliases(code))
    runnable, preset = {}, {}
    for ex in spec.exercises:
        source = extraction.solutions.get(ex.id)
        notes = extraction.notes.get(ex.id, [])
        if source is None:
            preset[ex.id] = ExerciseResult(ex.id, ex.points, 0, False, "; ".join(notes) or "no solution cell")
            continue
        if source.strip() == spec.stubs.get(ex.id, "").strip():
            preset[ex.id] = ExerciseResult(ex.id, ex.points, 0, False, "not attempted (the stub is unchanged)")
            continue
        forbid = spec.forbid(ex)
        uses = []
        if forbid:
            uses = forbidden_uses(source, forbid, aliases=aliases)
            for name, code in _helpers_used(source, extraction.helpers):
                uses += [f"helper `{name}`, {u}" for u in forbidden_uses(code, forbid, aliases=aliases)]
        if uses:
            preset[ex.id] = ExerciseResult(ex.id, ex.points, 0, False, "; ".join(uses))
            continue
        runnable[ex.id] = source
    records, ending = [], ""
    pending, helpers = list(runnable), list(extraction.helpers)
    for _ in range(len(pending) + len(helpers) + 1):
        if not pending:
            break
        recs, ending, overran = _run_job(sandbox, _job(spec, {k: runnable[k] for k in pending}, helpers))
        records += recs
        if overran is None:
            break
        # a step ignored its time limit and was stopped: record it, and run what came after it again
        if overran.startswith("helper:"):
            name = overran.removeprefix("helper:")
            helpers = [(n, c) for n, c in helpers if n != name]
            report.notes.append(f"helper `{name}` ran past its time limit and was left out")
            continue
        ex = next(e for e in spec.exercises if e.id == overran)
        records.append({"kind": "exercise", "id": overran, "error": f"timed out after {ex.timeout:.0f} s "
                        "(the code ignored the time limit and was stopped; the following exercises ran again)"})
        pending = pending[pending.index(overran) + 1:] if overran in pending else []
    if ending:
        report.notes.append(ending)
    report.cpu_seconds = sum(float(r.get("cpu_s") or 0) for r in records if r.get("kind") == "done")
    for rec in records:
        if rec.get("kind") in ("setup", "helper") and rec.get("error"):
            report.notes.append(f"{rec['kind']} {rec.get('name', rec.get('index'))}: {rec['error']}")
    by_id = {r["id"]: r for r in records if r.get("kind") == "exercise" and isinstance(r.get("id"), str)}
    for ex in spec.exercises:
        if ex.id in preset:
            result = preset[ex.id]
        else:
            result = _score_exercise(ex, spec, by_id.get(ex.id), reference.get(ex.id), runnable[ex.id])
            if not result.message and ex.id not in by_id:
                result.message = "did not run: " + (ending or "an earlier exercise stopped the process")
        extra = [n for n in extraction.notes.get(ex.id, []) if n not in result.message]
        if extra:
            result.message = "; ".join([*extra, result.message]).strip("; ")
        report.results.append(result)
    report.seconds = time.perf_counter() - t0
    return report


# --------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "student"


def student_ids(paths: Sequence[Path], roster: str | Path | None = None, *,
                notebooks: Sequence[str] = ()) -> dict[Path, str]:
    """A student id per submission: from the roster CSV (``student_id,path``), else from the path.

    Submissions in per-student folders (``alice/00_x.ipynb``) take the folder's
    name; files side by side take their file name without the notebook prefix
    (``00_getting_started_alice.ipynb`` -> ``alice``).
    """
    ids: dict[Path, str] = {}
    if roster:
        with open(roster, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                ids[Path(row["path"]).resolve()] = _safe(row["student_id"])
    parents = {p.resolve().parent for p in paths}
    out = {}
    for p in paths:
        rp = p.resolve()
        if rp in ids:
            out[p] = ids[rp]
        elif len(parents) > 1:
            out[p] = _safe(rp.parent.name)
        else:
            stem = p.stem
            for name in sorted(notebooks, key=len, reverse=True):
                if stem.startswith(name) and len(stem) > len(name):
                    stem = stem[len(name):]
                    break
            out[p] = _safe(stem)
    return out


def grade_batch(paths: Sequence[str | Path], *, config: GradeConfig, out: str | Path = "grades",
                roster: str | Path | None = None, notebook: str | Path | None = None,
                progress: bool = True) -> list[GradeReport]:
    """Grade many submissions in parallel; every one gets a report in ``out/<notebook>/``."""
    paths = [Path(p) for p in paths]
    from course_tools.nbtools import notebook_scripts

    ids = student_ids(paths, roster, notebooks=[s.stem for s in notebook_scripts(config.source)])
    sandbox = make_sandbox(config)
    groups: dict[Path | None, list[Path]] = {}
    early: list[GradeReport] = []
    for p in paths:
        try:
            script = Path(notebook) if notebook else instructor_script(p.name, Path(config.source))
        except FileNotFoundError as err:
            early.append(GradeReport("unknown", str(p), ids[p], [], [str(err)]))
            continue
        groups.setdefault(script, []).append(p)
    reports = list(early)
    for script, members in groups.items():
        spec = load_spec(script, config)
        t0 = time.perf_counter()
        reference = reference_outputs(spec, sandbox)
        if progress:
            print(f"{spec.name}: reference outputs in {time.perf_counter() - t0:.1f} s; grading {len(members)} "
                  f"submission(s) with {config.workers} worker(s) [{sandbox.backend}]", flush=True)

        done, lock, total = [0], threading.Lock(), len(members)

        def one(p: Path, spec=spec, reference=reference, total=total, done=done, lock=lock) -> GradeReport:
            try:
                r = grade_submission(p, spec, reference, sandbox, student=ids[p])
            except Exception as err:  # noqa: BLE001 - every submission gets a report
                r = GradeReport(spec.name, str(p), ids[p])
                r.notes.append(f"grader error: {type(err).__name__}: {err}")
                r.results = [ExerciseResult(e.id, e.points, 0, False, r.notes[-1]) for e in spec.exercises]
            if progress:
                with lock:
                    done[0] += 1
                    print(f"  [{done[0]}/{total}] {r.student}: {r.score}/{r.total} in {r.seconds:.1f} s", flush=True)
            return r

        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            reports += list(pool.map(one, members))
    out = Path(out)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    for r in reports:
        r.write(out / r.notebook)
    for name in {r.notebook for r in reports}:
        rows = [r for r in reports if r.notebook == name]
        summary = out / name / f"summary-{stamp}.csv"
        with summary.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["student", "submission", "score", "total", "fraction", "seconds", "notes", "interpretations"])
            for r in rows:
                w.writerow([r.student, r.submission, r.score, r.total, f"{r.fraction:.3f}", f"{r.seconds:.1f}",
                            " | ".join(r.notes), " | ".join(f"{x.exercise}: {x.interpretation}"
                                                            for x in r.results if x.interpretation)])
    return reports

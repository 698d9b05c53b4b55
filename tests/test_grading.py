"""The sandboxed grader: isolation, host-side checks, hidden tests, robust batches, hostile submissions.

The sandbox tests need bubblewrap and, as root, the unprivileged ``course-grader``
user: like the browser test installs Chromium, the ``bwrap`` fixture installs
Debian's ``bubblewrap`` and creates the user when it can (root, apt-get), and
skips with a message otherwise.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import nbformat
import pytest

from course_tools.grading import checks as C
from course_tools.grading import grader as G
from course_tools.grading import release as R
from course_tools.grading import runner as RUN
from course_tools.grading import sandbox as S
from course_tools.grading import spec as SP
from course_tools.nbtools import notebook_scripts, notebook_text, read_script
from course_utils.selfcheck import assert_no_forbidden_calls, forbidden_uses

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = notebook_scripts(ROOT / "notebooks")


# --------------------------------------------------------------------------
# pure host-side pieces (no sandbox)
# --------------------------------------------------------------------------

def test_forbidden_uses_resolve_aliases_imports_and_dynamic_lookups():
    src = textwrap.dedent('''\
        def f(frame, column):
            x = Fa.composition_table(frame, column)
            return frame[column].value_counts(normalize=True)
        ''')
    msgs = forbidden_uses(src, ["course_utils.fairness"], aliases={"Fa": "course_utils.fairness"})
    assert len(msgs) == 1 and "Fa.composition_table" in msgs[0] and "line 2" in msgs[0]
    assert forbidden_uses("from course_utils.fairness import composition_table as c\nc(1)",
                          ["Fa.composition_table"], aliases={"Fa": "course_utils.fairness"})
    assert "eval" in forbidden_uses("def f():\n    return eval('Fa.x')", ["course_utils.fairness"])[0]
    assert forbidden_uses("def f(m):\n    return sum(p.numel() for p in m.parameters())", ["course_utils.cost"]) == []
    assert forbidden_uses("x = 1", []) == []


def test_forbidden_uses_see_through_re_exports():
    """A package re-export and the defining module are the same reference, both ways."""
    src = "from course_utils.metric_learning import TripletLoss\nloss = TripletLoss(margin=0.2)"
    assert forbidden_uses(src, ["course_utils.metric_learning.losses"])
    src = "import course_utils.metric_learning.losses as L\nloss = L.TripletLoss(margin=0.2)"
    assert forbidden_uses(src, ["course_utils.metric_learning.TripletLoss"])
    src = "from course_utils.transfer import freeze\nfreeze(model)"
    assert forbidden_uses(src, ["course_utils.transfer.freezing.freeze"])
    # an unrelated name of the same package is still allowed
    assert forbidden_uses("from course_utils.metric_learning import ContrastiveLoss\nContrastiveLoss()",
                          ["course_utils.metric_learning.TripletLoss"]) == []


def test_visible_self_check_names_the_forbidden_call():
    from course_utils import cost

    def cheat(model):
        return cost.count_parameters(model, trainable_only=True)

    def honest(model):
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    with pytest.raises(AssertionError, match="cost.count_parameters"):
        assert_no_forbidden_calls(cheat, ["course_utils.cost"])
    assert_no_forbidden_calls(honest, ["course_utils.cost"])


def test_to_plain_turns_tricks_into_plain_values():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    out = RUN.to_plain({"a": Liar(3), "b": (1.5, True), "c": None})
    assert out == {"a": 3, "b": [1.5, True], "c": None} and type(out["a"]) is int
    np = pytest.importorskip("numpy")
    assert RUN.to_plain(np.arange(4).reshape(2, 2)) == [[0, 1], [2, 3]]
    with pytest.raises(TypeError):
        RUN.to_plain(object())


def test_same_and_checks():
    assert C.same([1, 2.0000001], [1, 2]) and not C.same([1, 2], [1, 3]) and not C.same(True, 1)
    assert C.equals(5).failure(5, None) is None and "wrong value" in C.equals(5).failure(4, None)
    assert C.holds(lambda v: v > 0, "positive").failure(-1, None).startswith("positive")
    assert C.reference().failure([1.0], [1.0]) is None


def _nb(cells: list[tuple[str, dict]]) -> dict:
    nb = nbformat.v4.new_notebook()
    for src, md in cells:
        c = nbformat.v4.new_code_cell(src)
        c.metadata.update(md)
        nb.cells.append(c)
    return nb


def test_extraction_names_duplicates_missing_lost_metadata_and_helpers(tmp_path):
    instructor = read_script(make_tiny(tmp_path))
    sub = _nb([
        ("import math\n\ndef _plus(a, b):\n    return a + b", {}),
        ("def add(a, b):\n    return 0", {"tags": ["solution"], "exercise": "add"}),
        ("def add(a, b):\n    return _plus(a, b)", {"tags": ["solution"], "exercise": "add"}),
        ("def scaled(x):\n    return base * x", {}),  # metadata stripped
    ])
    ex = SP.extract_submission(instructor, sub)
    assert ex.solutions["add"].endswith("_plus(a, b)")
    assert "duplicated" in ex.notes["add"][0]
    assert "lost its metadata" in ex.notes["scaled"][0] and "scaled" in ex.solutions
    assert "mean" not in ex.solutions and "no solution cell" in ex.notes["mean"][0]
    assert [n for n, _ in ex.helpers] == ["_plus"] and "`_plus`" in ex.general[0]


def test_student_ids_from_folders_files_and_roster(tmp_path):
    a, b = tmp_path / "alice" / "00_x.ipynb", tmp_path / "bob" / "00_x.ipynb"
    assert G.student_ids([a, b]) == {a: "alice", b: "bob"}
    c = tmp_path / "00_getting_started_carol.ipynb"
    assert G.student_ids([c], notebooks=["00_getting_started"]) == {c: "carol"}
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,path\ns-42,{c}\n")
    assert G.student_ids([c], roster) == {c: "s-42"}


def test_reports_are_never_overwritten(tmp_path):
    r = G.GradeReport("09_tiny", "x.ipynb", "alice", [G.ExerciseResult("add", 2, 2, True)])
    first, _ = r.write(tmp_path)
    second, _ = r.write(tmp_path)
    assert first.name == "alice.json" and second.name == "alice-2.json"


def test_unsafe_backend_is_refused_without_the_flag():
    with pytest.raises(S.SandboxUnavailable, match="--unsafe-no-sandbox"):
        G.make_sandbox(G.GradeConfig(backend="none"))


# --------------------------------------------------------------------------
# a tiny instructor notebook and its hidden tests
# --------------------------------------------------------------------------

TINY = '''\
# %%
import math
base = 10

# %% tags=["solution"] exercise="add" timeout=3
def add(a, b):
    ### BEGIN SOLUTION
    # Hint: use +.
    return a + b
    ### END SOLUTION

# %% tags=["check"] exercise="add" points=2
assert add(2, 3) == 5

# %% tags=["solution"] exercise="mean" forbid=["statistics"]
def mean(xs):
    ### BEGIN SOLUTION
    return sum(xs) / len(xs)
    ### END SOLUTION

# %% tags=["check"] exercise="mean" points=1
assert math.isclose(mean([1, 2, 3]), 2)

# %% tags=["solution"] exercise="scaled"
def scaled(x):
    ### BEGIN SOLUTION
    return base * x
    ### END SOLUTION

# %% tags=["check"] exercise="scaled" points=3
assert scaled(2) == 20
'''

TINY_HIDDEN = '''\
from course_tools.grading.checks import equals, holds


def probe_add(ns):
    f = ns["add"]
    return {"small": f(2, 3), "neg": f(-1, 1), "float": f(0.5, 0.25), "big": f(10**12, 1)}


def probe_mean(ns):
    f = ns["mean"]
    return {"a": f([1, 2, 3, 4]), "one": f([2.5]), "sym": f([-3, 3])}


def probe_scaled(ns):
    f = ns["scaled"]
    return {"x3": f(3), "zero": f(0), "neg": f(-0.5)}


EXPECT = {"add": {"neg": equals(0), "big": equals(10**12 + 1)},
          "mean": {"a": equals(2.5), "sym": holds(lambda v: abs(v) < 1e-12, "the mean of -3 and 3 is 0")},
          "scaled": {"x3": equals(30), "zero": equals(0)}}
'''


def make_tiny(tmp_path: Path) -> Path:
    script = tmp_path / "nb" / "09_tiny.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(TINY)
    (tmp_path / "hidden").mkdir(exist_ok=True)
    (tmp_path / "hidden" / "09_tiny.py").write_text(TINY_HIDDEN)
    return script


def test_tiny_spec_exercises_setup_and_forbid(tmp_path):
    nb = read_script(make_tiny(tmp_path))
    exs = SP.exercises(nb)
    assert [(e.id, e.points, e.forbid, e.timeout) for e in exs] == [
        ("add", 2, (), 3.0), ("mean", 1, ("statistics",), 30.0), ("scaled", 3, (), 30.0)]
    assert SP.setup_code(nb) == ["import math\nbase = 10"]


# --------------------------------------------------------------------------
# the sandbox
# --------------------------------------------------------------------------

def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


@pytest.fixture(scope="session")
def bwrap() -> str:
    """bubblewrap, installed with apt-get when missing, and the sandbox user when running as root."""
    if not sys.platform.startswith("linux"):
        pytest.skip("bubblewrap is Linux-only: the grader uses a container runtime elsewhere")
    if not shutil.which("bwrap"):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("bubblewrap is missing and cannot be installed here (needs root and apt-get): "
                        "install Debian's `bubblewrap` package to run the sandbox tests.")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "update", "-qq"], env=env, timeout=600)
        res = _run(["apt-get", "install", "-y", "-qq", "bubblewrap"], env=env, timeout=600)
        assert shutil.which("bwrap"), f"installing bubblewrap failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    if S.detect_backend() != "bwrap":
        pytest.skip("bubblewrap is installed but cannot create namespaces here (a container without "
                    "user namespaces?): the sandbox tests need it to run")
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(S.SANDBOX_USER)
        except KeyError:
            res = _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", S.SANDBOX_USER])
            assert res.returncode == 0, res.stderr
    return shutil.which("bwrap")


@pytest.fixture(scope="session")
def sandbox(bwrap) -> S.Sandbox:
    return G.make_sandbox(G.GradeConfig(backend="bwrap", limits=S.Limits(cpu_s=20, wall_s=20)))


def _sandboxed(sandbox: S.Sandbox, tmp_path: Path, code: str) -> tuple[S.SandboxResult, Path]:
    work = tmp_path / "work"
    work.mkdir()
    (work / "script.py").write_text(code)
    return sandbox.run(work, ["script.py"]), work


def test_sandbox_blocks_network_writes_outside_and_instructor_files(sandbox, tmp_path, monkeypatch):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "do-not-leak")
    outside = tmp_path / "outside.txt"
    code = textwrap.dedent(f'''\
        import os, socket, json
        res = {{}}
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"solutions")
            res["net"] = "connected"
        except OSError as e:
            res["net"] = type(e).__name__
        for target in ({str(outside)!r}, {str(ROOT / "notebooks" / "pwned.txt")!r}, "/etc/pwned"):
            try:
                open(target, "w").write("x"); res[target] = "written"
            except OSError as e:
                res[target] = type(e).__name__
        res["notebooks_visible"] = os.path.exists({str(ROOT / "notebooks" / "00_getting_started.py")!r})
        res["hidden_visible"] = os.path.exists({str(ROOT / "grading" / "hidden")!r})
        res["secret"] = os.environ.get("GRADER_SECRET_TOKEN")
        res["uid"] = os.getuid()
        res["tmp_private"] = os.listdir("/tmp")
        os.makedirs("/tmp/course-cache/features")  # the package's cache must work for the unprivileged user
        res["tmp_writable"] = os.path.isdir("/tmp/course-cache/features")
        open("result.json", "w").write(json.dumps(res))
        ''')
    result, work = _sandboxed(sandbox, tmp_path, code)
    assert result.returncode == 0, result.stderr
    res = json.loads((work / "result.json").read_text())
    try:
        conn, _ = listener.accept()
        got = conn.recv(100)
    except OSError:
        got = b""
    assert got == b"" and res["net"] != "connected"
    assert not outside.exists() and not (ROOT / "notebooks" / "pwned.txt").exists()
    assert all(v != "written" for k, v in res.items() if k.startswith("/"))
    assert res["notebooks_visible"] is False and res["hidden_visible"] is False
    assert res["secret"] is None and res["tmp_private"] == [] and res["tmp_writable"] is True
    if os.geteuid() == 0:
        assert res["uid"] != 0


def test_sandbox_limits_memory_processes_and_wall_clock(sandbox, tmp_path):
    code = textwrap.dedent('''\
        import json, threading, time
        res = {}
        try:
            block = bytearray(3 * 1024**3); res["mem"] = "allocated"
        except MemoryError:
            res["mem"] = "MemoryError"
        threads = []
        try:
            for _ in range(2000):
                t = threading.Thread(target=time.sleep, args=(5,)); t.start(); threads.append(t)
            res["threads"] = len(threads)
        except RuntimeError:
            res["threads"] = "refused at %d" % len(threads)
        open("result.json", "w").write(json.dumps(res))
        ''')
    result, work = _sandboxed(sandbox, tmp_path, code)
    assert result.returncode == 0, result.stderr
    res = json.loads((work / "result.json").read_text())
    assert res["mem"] == "MemoryError"
    assert str(res["threads"]).startswith("refused")
    quick = S.Sandbox(sandbox.backend, limits=S.Limits(wall_s=3), read_only=sandbox.read_only, env=sandbox.env)
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "script.py").write_text("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass\n")
    res = quick.run(loop, ["script.py"])
    assert res.timed_out and res.seconds < 15


@pytest.mark.skipif(not shutil.which("docker") and not shutil.which("podman"), reason="no container runtime")
def test_container_backend_when_a_daemon_runs(tmp_path):
    if S.detect_backend() not in ("docker", "podman"):
        pytest.skip("docker/podman is installed but no daemon runs here (documented in the instructor guide)")
    tool = S.detect_backend()
    if _run([tool, "image", "inspect", "course-grader"]).returncode != 0:
        pytest.skip("the `course-grader` image is not built (see docs/instructor_guide.md)")
    box = S.Sandbox(tool, limits=S.Limits(wall_s=60), env=(("HOME", "/tmp"),))
    work = tmp_path / "w"
    work.mkdir()
    (work / "script.py").write_text("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), 2)\n"
                                    "    print('net')\nexcept OSError:\n    print('nonet')\n")
    assert box.run(work, ["script.py"]).stdout.strip() == "nonet"


# --------------------------------------------------------------------------
# grading batches with hostile submissions
# --------------------------------------------------------------------------

def _student(script: Path, solutions: dict[str, str], *, strip_metadata: bool = False,
             extra_cells: list[tuple[int, str, dict]] = ()) -> nbformat.NotebookNode:
    nb = R.student_notebook(read_script(script))
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []) and cell.metadata.get("exercise") in solutions:
            cell.source = solutions[cell.metadata["exercise"]]
    for pos, src, md in extra_cells:
        c = nbformat.v4.new_code_cell(src)
        c.metadata.update(md)
        nb.cells.insert(pos, c)
    if strip_metadata:
        for cell in nb.cells:
            cell.metadata = {}
    return nb


GOOD = {"add": "def add(a, b):\n    return a + b", "mean": "def mean(xs):\n    return sum(xs) / len(xs)",
        "scaled": "def scaled(x):\n    return base * x"}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, bwrap):
    """One batch of the tiny notebook: honest, partial, blank and hostile submissions (2 workers)."""
    tmp = tmp_path_factory.mktemp("batch")
    script = make_tiny(tmp)
    subs = tmp / "subs"
    out = tmp / "grades"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    received: list[bytes] = []

    def serve():
        listener.settimeout(60)
        try:
            conn, _ = listener.accept()
            received.append(conn.recv(1000))
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    earlier = out / "09_tiny" / "earlier.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"score": 6}')
    wrong_add = "def add(a, b):\n    return abs(a) + b  # passes the visible check only"
    cases = {
        "aa_bad_json": None,  # first in the batch
        "solution": GOOD,
        "blank": {},
        "partial": {**GOOD, "add": wrong_add, "scaled": "def scaled(x):\n    raise ValueError('todo')"},
        "transformer": {"add": "get_ipython().input_transformers_cleanup.append(lambda lines: [])"},
        "custom_exc": {"add": "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)"},
        "liar_int": {"add": "class Liar(int):\n    def __eq__(self, o):\n        return True\n"
                            "    __hash__ = int.__hash__\n\ndef add(a, b):\n    return Liar(0)"},
        "patched_isclose": {"mean": "import math\nmath.isclose = lambda *a, **k: True\n\ndef mean(xs):\n    return 0"},
        "reads_solutions": {"add": f"exec(open({str(script)!r}).read())",
                            "scaled": f"import glob\nfor p in glob.glob({str(ROOT / 'notebooks')!r} + '/*.py'):\n"
                                      "    exec(open(p).read())"},
        "forbidden": {"mean": "import statistics\n\ndef mean(xs):\n    return statistics.mean(xs)"},
        "os_system": {"add": f"import os\nos.system('echo pwned > {ROOT}/notebooks/pwned.txt; "
                             f"echo 0 > {earlier}; touch {tmp}/escaped')\n"
                             f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 2)"
                             ".sendall(b'solutions')\nexcept OSError:\n    pass\n\n"
                             "def add(a, b):\n    return a + b"},
        "memory": {"add": "block = bytearray(3 * 1024**3)\n\ndef add(a, b):\n    return a + b"},
        "env": {"add": "import os\n\ndef add(a, b):\n    return len(os.environ.get('GRADER_SECRET_TOKEN', '')) + a + b"},
        "loop_cell": {**GOOD, "add": "while True:\n    pass"},
        "loop_ignores_alarm": {**GOOD, "add": "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                              "while True:\n    pass"},
        "after_loop": GOOD,
    }
    paths = []
    subs.mkdir()
    for name, sols in cases.items():
        path = subs / f"09_tiny_{name}.ipynb"
        if sols is None:
            path.write_text('{"cells": [ not json')
        else:
            path.write_text(notebook_text(_student(script, sols)))
        paths.append(path)
    # structure problems
    helpers = subs / "09_tiny_helper.ipynb"
    helpers.write_text(notebook_text(_student(script, {"add": "def add(a, b):\n    return _plus(a, b)", **{
        k: v for k, v in GOOD.items() if k != "add"}}, extra_cells=[(1, "def _plus(a, b):\n    return a + b", {})])))
    dup = subs / "09_tiny_duplicate.ipynb"
    dup.write_text(notebook_text(_student(script, GOOD, extra_cells=[
        (1, "def add(a, b):\n    return 0", {"tags": ["solution"], "exercise": "add"})])))
    stripped = subs / "09_tiny_stripped.ipynb"
    stripped.write_text(notebook_text(_student(script, GOOD, strip_metadata=True)))
    missing_nb = _student(script, GOOD)
    missing_nb.cells = [c for c in missing_nb.cells if c.metadata.get("exercise") != "mean"]
    missing = subs / "09_tiny_missing.ipynb"
    missing.write_text(notebook_text(missing_nb))
    paths += [helpers, dup, stripped, missing]
    for who in ("alice", "bob"):
        (tmp / who).mkdir()
        shutil.copy(subs / "09_tiny_solution.ipynb", tmp / who / "09_x.ipynb")
    config = G.GradeConfig(source=script.parent, hidden=tmp / "hidden", experiments=tmp / "none", backend="bwrap",
                           limits=S.Limits(cpu_s=60, wall_s=20), workers=2)
    os.environ["GRADER_SECRET_TOKEN"] = "do-not-leak"
    try:
        reports = G.grade_batch(paths, config=config, out=out, progress=False)
        folder_reports = G.grade_batch([tmp / "alice" / "09_x.ipynb", tmp / "bob" / "09_x.ipynb"], config=config,
                                       out=out, progress=False)
    finally:
        del os.environ["GRADER_SECRET_TOKEN"]
    by_name = {Path(r.submission).stem.removeprefix("09_tiny_"): r for r in reports}
    return {"reports": by_name, "folders": folder_reports, "out": out, "tmp": tmp, "received": received,
            "earlier": earlier}


def _msg(report, exercise):
    return next(r for r in report.results if r.exercise == exercise).message


def test_solution_blank_and_partial(batch):
    r = batch["reports"]
    assert r["solution"].score == r["solution"].total == 6
    assert r["blank"].score == 0 and all("not attempted" in x.message for x in r["blank"].results)
    p = r["partial"]
    assert p.score == 1 and "hidden checks failed" in _msg(p, "add") and "ValueError: todo" in _msg(p, "scaled")


def test_every_submission_gets_a_report_with_a_reason(batch):
    r = batch["reports"]
    assert len(r) == 20
    assert r["aa_bad_json"].score == 0 and "not a readable notebook" in r["aa_bad_json"].notes[0]
    files = sorted(p.name for p in (batch["out"] / "09_tiny").glob("*.json"))
    assert len(files) == 20 + 2 + 1  # this batch, alice and bob, the earlier report
    for report in r.values():
        assert all(x.passed or x.message for x in report.results), report.to_dict()


def test_hostile_tricks_earn_nothing(batch):
    r = batch["reports"]
    for name in ("transformer", "custom_exc"):
        assert r[name].score == 0 and "NameError" in _msg(r[name], "add")
    liar = _msg(r["liar_int"], "add")
    assert r["liar_int"].score == 0 and ("differs" in liar or "wrong value" in liar)
    assert r["patched_isclose"].score == 0 and "hidden checks failed" in _msg(r["patched_isclose"], "mean")
    assert r["reads_solutions"].score == 0
    assert "FileNotFoundError" in _msg(r["reads_solutions"], "add")
    f = r["forbidden"]
    assert f.score == 0 and "statistics" in _msg(f, "mean") and "write it yourself" in _msg(f, "mean")


def test_hostile_side_effects_are_contained(batch):
    r = batch["reports"]
    assert r["os_system"].score == 2  # it solved `add`; its shell commands did nothing outside the sandbox
    assert not (ROOT / "notebooks" / "pwned.txt").exists() and not (batch["tmp"] / "escaped").exists()
    assert batch["earlier"].read_text() == '{"score": 6}'
    assert batch["received"] == []
    assert r["memory"].score == 0 and "MemoryError" in _msg(r["memory"], "add")
    assert r["env"].score == 2  # the grader's environment variable is not visible: add() stays right


def test_timeouts_stop_one_submission_not_the_batch(batch):
    r = batch["reports"]
    loop = r["loop_cell"]
    assert "timed out after 3 s" in _msg(loop, "add") and loop.score == 4  # the other exercises still graded
    hard = r["loop_ignores_alarm"]  # stopped by the host's deadline; the exercises after it run again
    assert "ignored the time limit" in _msg(hard, "add") and hard.score == 4
    assert r["after_loop"].score == 6


def test_structure_problems_are_named(batch):
    r = batch["reports"]
    assert r["helper"].score == 6 and "`_plus`" in r["helper"].notes[0]
    assert r["duplicate"].score == 6 and "duplicated" in _msg(r["duplicate"], "add")
    assert r["stripped"].score == 6 and "lost its metadata" in _msg(r["stripped"], "add")
    assert r["missing"].score == 5 and "no solution cell" in _msg(r["missing"], "mean")


def test_same_file_name_in_student_folders_gives_two_reports(batch):
    folders = batch["folders"]
    assert sorted(r.student for r in folders) == ["alice", "bob"] and all(r.score == 6 for r in folders)
    assert (batch["out"] / "09_tiny" / "alice.json").is_file() and (batch["out"] / "09_tiny" / "bob.json").is_file()
    summaries = sorted((batch["out"] / "09_tiny").glob("summary-*.csv"))
    assert summaries and any("alice" in s.read_text() for s in summaries)
    rows = list(csv.reader(summaries[0].open()))
    assert rows[0][:4] == ["student", "submission", "score", "total"]


# --------------------------------------------------------------------------
# the course's notebooks
# --------------------------------------------------------------------------

def test_unsafe_flag_grades_without_isolation_and_says_so(tmp_path, capsys):
    script = make_tiny(tmp_path)
    sub = tmp_path / "09_tiny_solution.ipynb"
    sub.write_text(notebook_text(_student(script, GOOD)))
    config = G.GradeConfig(source=script.parent, hidden=tmp_path / "hidden", backend="none", unsafe=True, workers=1)
    (report,) = G.grade_batch([sub], config=config, out=tmp_path / "g", progress=False)
    assert report.score == report.total == 6
    assert "WITHOUT a sandbox" in capsys.readouterr().err


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_hidden_tests_cover_every_exercise(script):
    """Each exercise has a probe and at least one check that does not use the reference implementation."""
    hidden = ROOT / "grading" / "hidden" / f"{script.stem}.py"
    assert hidden.is_file(), f"no hidden tests for {script.stem}: write grading/hidden/{script.stem}.py"
    tests = C.load_hidden(hidden)
    nb = read_script(script)
    for ex in SP.exercises(nb):
        if ex.experiment:
            assert (ROOT / "grading" / "experiments" / f"{script.stem}.json").is_file(), "run course-release --experiments"
            continue
        assert ex.id in tests.probes, f"{script.stem}: no probe_{ex.id}"
        own = [c for checks in tests.expect.get(ex.id, {}).values() for c in checks if c.kind != "reference"]
        assert own, f"{script.stem}: {ex.id} has no check independent of the reference"
        forbid = ex.forbid + tests.forbid.get(ex.id, ())
        for i in ex.solution_cells:
            assert forbidden_uses(nb.cells[i].source, forbid, aliases=SP.notebook_aliases(nb)) == [], ex.id


@pytest.mark.notebook
@pytest.mark.parametrize("script", SCRIPTS[1:-1], ids=lambda p: p.stem)  # 00 and 06 are graded in full below
def test_reference_solutions_pass_their_hidden_tests(script, bwrap):
    """The instructor's solutions, run like a submission, pass every hidden check (explicit values included)."""
    config = G.GradeConfig(source=ROOT / "notebooks", hidden=ROOT / "grading" / "hidden", backend="bwrap")
    spec = G.load_spec(script, config)
    reference = G.reference_outputs(spec, G.make_sandbox(config))  # raises with the failing checks
    assert set(reference) == {e.id for e in spec.exercises if not e.experiment}


def test_bundle_holds_no_solutions_or_hidden_tests(tmp_path):
    dest = R.write_bundle(tmp_path / "bundle", root=ROOT, repo_url="https://github.com/someone/cnn-course-student")
    files = [p for p in dest.rglob("*") if p.is_file()]
    names = {p.relative_to(dest).as_posix() for p in files}
    assert "README.md" in names and "pyproject.toml" in names and "data/README.md" in names
    assert {f"notebooks/{s.stem}.ipynb" for s in SCRIPTS} <= names
    assert not any(n.startswith(("grading/", "course_tools/")) or n.endswith(".py") and n.startswith("notebooks/")
                   for n in names)
    for p in files:
        if p.suffix in (".ipynb", ".py", ".md", ".toml"):
            text = p.read_text(encoding="utf-8")
            assert "### BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, p
    assert "colab.research.google.com/github/someone/cnn-course-student/blob/main/notebooks/00_" in \
        (dest / "README.md").read_text()
    first = next(c for c in nbformat.read(dest / "notebooks" / "00_getting_started.ipynb", as_version=4).cells
                 if c.cell_type == "code")
    assert "git+https://github.com/someone/cnn-course-student@main" in first.source


@pytest.mark.notebook
def test_real_notebook_00_blank_solved_and_hostile(tmp_path, bwrap):
    script = ROOT / "notebooks" / "00_getting_started.py"
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "00_getting_started_blank.ipynb").write_text(notebook_text(R.student_notebook(read_script(script))))
    (subs / "00_getting_started_solved.ipynb").write_text(notebook_text(read_script(script)))
    cheat = _student(script, {
        "count_trainable": "from course_utils.cost import count_parameters\n\n"
                           "def count_trainable(model):\n    return count_parameters(model, trainable_only=True)",
        "stop_at_accuracy": "get_ipython().input_transformers_cleanup.append(lambda lines: [])",
    })
    (subs / "00_getting_started_cheat.ipynb").write_text(notebook_text(cheat))
    config = G.GradeConfig(source=ROOT / "notebooks", hidden=ROOT / "grading" / "hidden",
                           experiments=ROOT / "grading" / "experiments", backend="bwrap", workers=2)
    reports = {r.student: r for r in G.grade_batch(sorted(subs.iterdir()), config=config, out=tmp_path / "g",
                                                   progress=False)}
    assert reports["blank"].score == 0 and reports["blank"].total == 5
    solved = reports["solved"]
    assert solved.score == solved.total, [x.message for x in solved.results if not x.passed]
    assert next(x for x in solved.results if x.exercise == "no_batchnorm").interpretation.startswith("Without")
    cheat = reports["cheat"]
    assert cheat.score == 0
    assert "course_utils.cost" in _msg(cheat, "count_trainable") and "NameError" in _msg(cheat, "stop_at_accuracy")


@pytest.mark.notebook
def test_real_notebook_06_reference_calls_and_patched_numpy_score_nothing(tmp_path, bwrap):
    """The issue's 10/10 cheat: five answers calling Fa.* and one wrong answer with np.allclose patched."""
    from course_utils.settings import data_dir

    if not (data_dir() / "fairface" / "fairface_label_val.csv").is_file():
        # the experiment's release range (grading/experiments/06_fairface_bias.json) was measured on real FairFace
        # faces; on the SynthFaces fallback a correct answer lands elsewhere, so the solved notebook would lose it
        pytest.skip("notebook 06's graded experiment needs FairFace in COURSE_DATA_DIR (its range was measured there)")
    script = ROOT / "notebooks" / "06_fairface_bias.py"
    cheat = _student(script, {
        "composition_shares": "def composition_shares(frame, column):\n"
                              "    return Fa.composition_table(frame, column)['share']",
        "accuracy_gap": "def accuracy_gap(y_true, y_pred, groups):\n"
                        "    mf = MetricFrame(metrics=Fa.ACCURACY, y_true=y_true, y_pred=y_pred, "
                        "sensitive_features=groups)\n    return mf.difference(), mf.ratio()",
        "balancing_weights": "np.allclose = lambda *a, **k: True\n\n"
                             "def balancing_weights(groups):\n    return np.ones(len(groups))",
    })
    path = tmp_path / "06_fairface_bias_cheat.ipynb"
    path.write_text(notebook_text(cheat))
    solved = tmp_path / "06_fairface_bias_solved.ipynb"
    solved.write_text(notebook_text(read_script(script)))
    config = G.GradeConfig(source=ROOT / "notebooks", hidden=ROOT / "grading" / "hidden", backend="bwrap", workers=2)
    reports = {r.student: r for r in G.grade_batch([path, solved], config=config, out=tmp_path / "g", progress=False)}
    r = reports["cheat"]
    assert r.score == 0
    assert "Fa.composition_table" in _msg(r, "composition_shares")
    assert "MetricFrame" in _msg(r, "accuracy_gap") or "Fa.ACCURACY" in _msg(r, "accuracy_gap")
    assert "hidden checks failed" in _msg(r, "balancing_weights")
    assert reports["solved"].score == reports["solved"].total

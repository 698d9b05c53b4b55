"""Run untrusted code in an existing sandbox tool: bubblewrap, else a container runtime.

* ``bwrap`` (Linux, Debian package ``bubblewrap``): a new mount namespace
  whose root holds only read-only system directories, the Python
  installation, the virtual environment and the ``course_utils`` package
  (never the repository, its notebooks or hidden tests), a private ``/tmp``
  and the job's working copy as the only writable directory; no network
  (a new network namespace has only a down loopback), new PID/IPC/UTS
  namespaces, a scrubbed environment, no capabilities, killed with its parent.
  As root, bwrap sets the mounts up and the code runs as the unprivileged
  ``course-grader`` user (root would ignore the process limit); as another
  user, bwrap runs unprivileged in a user namespace as that user.
* ``docker``/``podman``: one container per job (``--network none``,
  ``--read-only``, ``--memory``, ``--pids-limit``, ``--user nobody``), from an
  image that has Python and ``course_utils`` installed (``--image``).
* ``none``: a plain subprocess with the limits below and a scrubbed
  environment, *not isolated*; only with an explicit unsafe flag.

Limits (``Limits``): CPU seconds, data segment (RLIMIT_DATA; an address-space
limit breaks ``import torch``), processes and threads, file size, and a
wall-clock limit for the whole job after which its process group is killed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SANDBOX_USER", "Limits", "Sandbox", "SandboxResult", "SandboxUnavailable", "backend_works", "detect_backend"]

SANDBOX_USER = "course-grader"
GIB = 1024**3
BACKENDS = ("bwrap", "docker", "podman", "none")


class SandboxUnavailable(RuntimeError):
    """No isolation tool can run here (and the unsafe fallback was not asked for)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed job."""

    cpu_s: int = 300
    data_bytes: int = 2 * GIB
    processes: int = 512
    file_bytes: int = 256 * 1024**2
    wall_s: float = 240.0


@dataclass(frozen=True)
class SandboxResult:
    """How a sandboxed job ended."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float
    stopped: bool = False


def backend_works(backend: str) -> bool:
    """Whether ``backend`` can run here (bubblewrap creates namespaces; a container daemon answers)."""
    if backend == "none":
        return True
    if backend == "bwrap":
        return sys.platform.startswith("linux") and bool(shutil.which("bwrap")) and _bwrap_works()
    if not shutil.which(backend):
        return False
    try:
        return subprocess.run([backend, "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def detect_backend() -> str:
    """The first usable backend: ``bwrap``, then ``docker``/``podman`` with a running daemon, else ``none``."""
    return next((b for b in ("bwrap", "docker", "podman") if backend_works(b)), "none")


def _bwrap_works() -> bool:
    try:
        res = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-net", "--", "true"], check=False,
                             capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def _user_ids(name: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxUnavailable(
            f"the grader runs as root but the unprivileged user {name!r} does not exist: create it with "
            f"`useradd --system --no-create-home --shell /usr/sbin/nologin {name}` (root ignores process limits)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _tail(fh, n: int = 20_000) -> str:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - n))
    return fh.read().decode("utf-8", errors="replace")


def _ancestors(path: Path) -> list[str]:
    return [str(p) for p in reversed(path.parents) if str(p) != "/"]


@dataclass(frozen=True)
class Sandbox:
    """Runs ``python runner.py ...`` for one job directory under the chosen backend.

    Args:
        backend: ``bwrap``, ``docker``, ``podman`` or ``none`` (unsafe).
        limits: resource limits per job.
        read_only: host directories visible (read-only) inside, besides the system ones.
        env: the only environment variables the job sees.
        image: container image (docker/podman), with Python and ``course_utils`` installed.
        python: the interpreter to run inside (bwrap/none); default: this one.
    """

    backend: str
    limits: Limits = field(default_factory=Limits)
    read_only: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    image: str = "course-grader"
    python: str = sys.executable
    user: str = SANDBOX_USER

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown sandbox backend {self.backend!r}; one of {BACKENDS}")

    # -- command lines ----------------------------------------------------
    def _rlimit_prefix(self) -> list[str]:
        lim = self.limits
        return ["prlimit", f"--cpu={lim.cpu_s}", f"--data={lim.data_bytes}", f"--nproc={lim.processes}",
                f"--fsize={lim.file_bytes}", "--core=0", "--"]

    def _bwrap_command(self, workdir: Path, argv: list[str]) -> list[str]:
        system = [d for d in ("/usr", "/etc", "/opt") if os.path.isdir(d)]
        cmd = ["bwrap"]
        for d in system:
            cmd += ["--ro-bind", d, d]
        for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = Path("/" + link)
            if p.is_symlink():
                cmd += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                cmd += ["--ro-bind", str(p), str(p)]
        made: set[str] = set()
        for d in self.read_only:
            if not os.path.exists(d) or any(d == s or d.startswith(s + "/") for s in system):
                continue
            for parent in _ancestors(Path(d)):
                if parent not in made and not any(parent == s or parent.startswith(s + "/") for s in system):
                    cmd += ["--perms", "0755", "--dir", parent]
                    made.add(parent)
            cmd += ["--ro-bind", d, d]
        cmd += ["--bind", str(workdir), "/submission", "--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--tmpfs", "/tmp",
                "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--clearenv", "--chdir", "/submission"]
        for k, v in self.env:
            cmd += ["--setenv", k, v]
        if os.geteuid() == 0:
            uid, gid = _user_ids(self.user)
            cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", "setpriv", f"--reuid={uid}",
                    f"--regid={gid}", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
        else:
            cmd += ["--unshare-user", "--cap-drop", "ALL", "--"]
        return self._rlimit_prefix() + cmd + argv

    def _container_command(self, workdir: Path, argv: list[str], name: str) -> list[str]:
        lim = self.limits
        cmd = [self.backend, "run", "--rm", "--name", name, "--network", "none", "--read-only",
               "--tmpfs", "/tmp:rw,size=512m", "--memory", str(lim.data_bytes), "--pids-limit", str(lim.processes),
               "--cpus", "1", "--ulimit", f"cpu={lim.cpu_s}", "--ulimit", f"fsize={lim.file_bytes}",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "65534:65534",
               "-v", f"{workdir}:/submission:rw", "-w", "/submission"]
        for k, v in self.env:
            cmd += ["-e", f"{k}={v}"]
        return cmd + [self.image, "python", *argv[1:]]

    def prepare(self, workdir: Path) -> None:
        """Give the working directory to the sandbox user (bwrap as root)."""
        if self.backend == "bwrap" and os.geteuid() == 0:
            uid, gid = _user_ids(self.user)
            for p in [workdir, *workdir.rglob("*")]:
                os.chown(p, uid, gid)
        elif self.backend in ("docker", "podman"):  # the container's user 65534 writes the results
            os.chmod(workdir, 0o777)
            for p in workdir.iterdir():
                os.chmod(p, 0o666)

    # -- running ----------------------------------------------------------
    def run(self, workdir: str | Path, argv: list[str], *, stop: Callable[[], bool] | None = None,
            poll_s: float = 0.25) -> SandboxResult:
        """Run ``argv`` (``[python, script, args...]`` relative to ``workdir``) inside the sandbox.

        ``stop`` is polled while the job runs; when it returns true the job is
        killed (the grader's per-exercise deadline). The wall-clock limit kills it too.
        """
        workdir = Path(workdir).resolve()
        self.prepare(workdir)
        name = f"course-grade-{os.getpid()}-{time.monotonic_ns()}"
        if self.backend == "bwrap":
            cmd = self._bwrap_command(workdir, [self.python, *argv])
        elif self.backend in ("docker", "podman"):
            cmd = self._container_command(workdir, ["python", *argv], name)
        else:
            cmd = self._rlimit_prefix() + [self.python, *argv]
        env = dict(self.env) if self.backend == "none" else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        t0 = time.perf_counter()
        timed_out = stopped = False
        # files, not pipes: the job's output is bounded by its file-size limit, not by the host's memory
        with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
            proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                                    start_new_session=True)
            while True:
                try:
                    proc.wait(timeout=poll_s)
                    break
                except subprocess.TimeoutExpired:
                    if time.perf_counter() - t0 > self.limits.wall_s:
                        timed_out = True
                    elif stop is not None and stop():
                        stopped = True
                    else:
                        continue
                    self._kill(proc, name)
                    proc.wait()
                    break
            out, err = _tail(out_f), _tail(err_f)
        return SandboxResult(proc.returncode, out, err, timed_out, time.perf_counter() - t0, stopped)

    def _kill(self, proc: subprocess.Popen, name: str) -> None:
        if self.backend in ("docker", "podman"):
            subprocess.run([self.backend, "kill", name], capture_output=True, timeout=30, check=False)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

"""The process a submission runs in: its sandbox, its resource limits, and its end.

``bwrap`` (bubblewrap, Linux): new user, PID, network, IPC, UTS and mount namespaces; the
filesystem is the interpreter, NumPy and SciPy, the worker script and the submission's folder,
read-only (twinnet hidden), and a size-bounded ``/tmp`` to write in; no home, no environment. The process dies
with twinnet, and when its PID namespace's first process is killed every process the submission
started goes with it. ``none``: the same child, limits and protocol, run as the user; see
docs/check-threat-model.md for what that leaves open. Both: ``setrlimit`` on memory, CPU time,
processes, file size and open files (set by the worker before the learner's code runs), a
scrubbed environment and argv, its own session, killed as a whole at the end.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from twinnet.check import _worker

MODES = ("auto", "bwrap", "none")
WORKER = Path(_worker.__file__).resolve()
PROCESSES = 16  # RLIMIT_NPROC: counted per user namespace under bwrap, per user without it
FILE_SIZE = 64 << 20  # RLIMIT_FSIZE, bytes
OPEN_FILES = 64
TMP_SIZE = 128 << 20  # bytes of each of the sandbox's two writable folders (in memory)
SANDBOX_WORK = Path("/twinnet/work")  # the sandbox's working folder
MAX_ENTRIES = 1000  # entries of the submission's folder made visible in its working folder
START_TIME = 120  # seconds for the child to start (counted in the file's budget, not in its time limit)
ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
NONE_WARNING = ("twinnet check: warning: checking {n} files without a sandbox ({why}): each runs with "
                "your permissions and can read and change your files, reach the network, leave "
                "processes running and forge its own or another file's results; install bubblewrap "
                "(apt-get install bubblewrap) to isolate them")


def _packages():
    """The folders of installed packages the child may import from: NumPy's and SciPy's (so a
    learner's ``import sklearn`` works too). twinnet is not among them: an editable install is a
    ``.pth`` file, which the child (``python -S``) never reads; an installed copy is hidden."""
    import numpy
    import scipy

    return sorted({str(Path(module.__file__).resolve().parent.parent) for module in (numpy, scipy)})


@functools.cache
def bwrap_problem() -> str:
    """Why bubblewrap cannot sandbox a process here ("" when it can): a trivial sandbox is tried."""
    if shutil.which("bwrap") is None:
        return "bwrap not found"
    with tempfile.TemporaryDirectory(prefix="twinnet-probe-") as tmp:
        command = _bwrap_command(Path(tmp), SANDBOX_WORK, [str(Path(sys.executable).resolve()), "-I", "-S",
                                                           "-c", "pass"], None)
        try:
            done = subprocess.run(command, capture_output=True, timeout=60, env=ENVIRONMENT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap failed: {exc}"
    if done.returncode:
        return f"bwrap failed: {done.stderr.decode(errors='replace').strip()[:300]}"
    return ""


def resolve(mode) -> str:
    """``auto`` -> ``bwrap`` where it works, else ``none``; ``bwrap`` where it does not: an error."""
    if mode not in MODES:
        raise ValueError(f"sandbox must be one of {', '.join(map(repr, MODES))}; got sandbox={mode!r}.")
    if mode == "none":
        return mode
    problem = bwrap_problem()
    if problem and mode == "bwrap":
        raise ValueError(f"--sandbox bwrap: bubblewrap cannot sandbox a process here: {problem}")
    return "none" if problem else "bwrap"


def none_warning(n, requested) -> str:
    return NONE_WARNING.format(n=n, why="--sandbox none" if requested == "none" else bwrap_problem())


@functools.cache
def _tmpfs_size_option() -> bool:
    return "--size" in subprocess.run(["bwrap", "--help"], capture_output=True, text=True).stdout


def _bind(source, target=None):
    source = Path(source)
    target = str(target or source)
    return ["--symlink", os.readlink(source), target] if source.is_symlink() else ["--ro-bind", str(source), target]


def _bwrap_command(folder, work, command, info_fd, hidden=()):
    """bwrap's command line: what the child sees is only what is bound here; the files ``hidden``
    (other submissions under ``folder``) are there, but cannot be opened."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--proc", "/proc", "--dev", "/dev"]
    for system in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ld.so.cache"):
        if os.path.lexists(system):
            args += _bind(system)
    prefix = Path(sys.base_prefix).resolve()
    executable = Path(sys.executable).resolve()
    for path in {prefix, executable, *map(Path, _packages())}:
        args += ["--ro-bind", str(path), str(path)]
    for site in _packages():
        if (Path(site) / "twinnet").is_dir():
            args += ["--tmpfs", str(Path(site) / "twinnet")]  # an installed twinnet: hidden
    args += ["--ro-bind", str(WORKER), "/check/worker.py"]
    for scratch in ("/tmp", str(work)):
        args += (["--size", str(TMP_SIZE)] if _tmpfs_size_option() else []) + ["--tmpfs", scratch]
    args += ["--ro-bind", str(folder), str(folder)]
    for other in hidden:
        args += ["--ro-bind", "/dev/null", str(other)]
    for entry in sorted(folder.iterdir())[:MAX_ENTRIES]:  # the submission's data files, where it looks
        args += ["--symlink", str(entry), str(work / entry.name)]
    args += ["--chdir", str(work), "--remount-ro", "/"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    for key, value in {**ENVIRONMENT, "HOME": str(work), "TMPDIR": str(work)}.items():
        args += ["--setenv", key, value]
    return args + ["--", *command]


class Interrupted(BaseException):  # noqa: N818  (as KeyboardInterrupt, which it follows)
    """The run was interrupted (Ctrl-C): no learner's process starts any more."""


class Children:
    """The learner's processes of one run: :meth:`stop` ends them all at once and lets no other start.

    A process is killed, waited for and cleaned up by the thread that started it (:meth:`Child.kill`);
    :meth:`stop`, called from another thread, only sends the signals, so that each thread, its
    process gone, finishes at once.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._live, self._stopped = set(), False

    def add(self, child):
        """Count ``child`` in; ``Interrupted`` (and ``child`` killed) once the run is stopped."""
        with self._lock:
            if not self._stopped:
                self._live.add(child)
                return
        child.kill()
        raise Interrupted

    def discard(self, child):
        with self._lock:  # after this, stop() no longer signals the child (its pid may be reused)
            self._live.discard(child)

    def stop(self):
        with self._lock:
            self._stopped = True
            for child in self._live:
                if child.process.returncode is None:  # a reaped one's pid may be another process's by now
                    child.signal()


class Child:
    """The learner's process: started, asked, and killed with everything it started.

    ``children``: the run's :class:`Children`, which counts it in.
    """

    def __init__(self, mode, path, hidden=(), children=None):
        self.mode, self.path = mode, Path(path).resolve()
        self.children = children
        folder = self.path.parent
        theirs_in, self.to_child = os.pipe()
        self.from_child, theirs_out = os.pipe()
        os.set_blocking(self.to_child, False)  # sends have a deadline (see send)
        pass_fds = [theirs_in, theirs_out]
        self._tmp = tempfile.TemporaryDirectory(prefix="twinnet-check-")
        tmp = Path(self._tmp.name)
        self.pid1 = None
        if mode == "bwrap":
            info_read, info_write = os.pipe()
            pass_fds.append(info_write)
            command = _bwrap_command(folder, SANDBOX_WORK, [
                str(Path(sys.executable).resolve()), "-I", "-S", "/check/worker.py", str(theirs_in),
                str(theirs_out), ":".join(_packages())], info_write, hidden)
            env, cwd = ENVIRONMENT, tmp
        else:
            work = tmp / "work"
            work.mkdir()
            for entry in sorted(folder.iterdir())[:MAX_ENTRIES]:  # the submission's data files
                (work / entry.name).symlink_to(entry)
            command = [sys.executable, "-I", "-S", str(WORKER), str(theirs_in), str(theirs_out),
                       ":".join(_packages())]
            env, cwd = {**ENVIRONMENT, "HOME": str(work), "TMPDIR": str(work)}, work
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, pass_fds=pass_fds, env=env, cwd=cwd,
                                            start_new_session=True)
        finally:
            for fd in pass_fds:
                os.close(fd)
        if mode == "bwrap":
            self.pid1 = self._read_info(info_read)
        if children is not None:
            children.add(self)

    def _read_info(self, fd):
        """The host PID of the sandbox's first process: killing it ends the PID namespace."""
        try:
            with os.fdopen(fd, "rb") as info:
                return json.loads(info.read(4096) or b"{}").get("child-pid")
        except ValueError:
            return None

    def send(self, kind, body, deadline):
        """``TimeoutError`` when the child has not taken the message by ``deadline``."""
        try:
            _worker.send(self.to_child, kind, body, deadline)
        except OSError:  # the child is gone: the next receive says so
            pass

    def receive(self, deadline):
        """The child's next message; ``TimeoutError`` past ``deadline``, ``ProtocolError`` when it
        breaks the protocol or is gone."""
        return _worker.receive(self.from_child, deadline)

    def exit_status(self) -> str:
        """How the process ended, in words, once it has."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "did not end"
        if self.mode == "bwrap" and code > 128:  # bwrap passes on a signal as 128 + its number
            code = 128 - code
        if code < 0:
            name = signal.Signals(-code).name
            return {"SIGXCPU": "ran out of CPU time (SIGXCPU)"}.get(name, f"killed by {name}")
        return f"exit status {code}"

    def signal(self):
        """SIGKILL the process and every process it started, and return (:meth:`kill` waits for them)."""
        if self.pid1:
            try:  # the namespace's first process: the kernel kills the rest, then bwrap ends
                os.kill(self.pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def kill(self):
        """End the process and every process it started; returns once they are gone."""
        if self.children is not None:
            self.children.discard(self)
        self.signal()
        self.process.wait()
        if self.pid1:  # gone, or a zombie: its namespace's processes are all gone by then
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(self.pid1):
                time.sleep(0.01)
        for fd in (self.to_child, self.from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        self._tmp.cleanup()


def _alive(pid) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")

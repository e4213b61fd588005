"""The bench's side of its child processes: start one with its job, ask it for runs, stop it.

A child is ``python -c BOOT`` running :func:`twinnet.bench.worker.main`, with SIGINT ignored:
Ctrl-C is for the bench, which stops its children. The protocol is in :mod:`twinnet.bench.worker`.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

# SIGINT ignored before anything is imported
BOOT = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "from twinnet.bench.worker import main; main()")


class ChildFailed(Exception):
    """A child that failed, diverged, ended or gave no answer in time: ``status`` and one line why."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Child:
    """One child process of the bench, started with its job; :meth:`receive` its answers.

    Parameters
    ----------
    job : dict
        The job (see :mod:`twinnet.bench.worker`); ``job["threads"]`` also goes to the thread variables
        of its environment, read by the libraries as they load (none for ``"auto"``).
    """

    def __init__(self, job):
        import twinnet
        from twinnet.quiet import VERBOSE_ENV
        from twinnet.lab.sweep import THREAD_ENV

        source = os.path.dirname(os.path.dirname(os.path.abspath(twinnet.__file__)))
        limits = {} if job["threads"] == "auto" else dict.fromkeys(THREAD_ENV, str(job["threads"]))
        env = {**os.environ, **limits,
               # this twinnet, not another one installed in the environment
               "PYTHONPATH": os.pathsep.join([source, *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.label = job["label"]
        # kept, to quote when the child dies; with --verbose, shown as it comes
        self.stderr = None if os.environ.get(VERBOSE_ENV) else tempfile.TemporaryFile()
        self.process = subprocess.Popen([sys.executable, "-c", BOOT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                        text=True, encoding="utf-8")
        self.answers = queue.Queue()
        self.reader = threading.Thread(target=self._read, name=f"bench child {self.label}", daemon=True)
        self.reader.start()
        self._send(job)

    def _read(self):
        try:
            for line in self.process.stdout:
                self.answers.put(line)
        except (OSError, ValueError):  # closed by close(), the child killed
            pass
        finally:
            self.answers.put(None)  # the child closed its end: it ended

    def _send(self, message):
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):  # it ended, or was stopped; the next receive says how
            pass

    def ask(self, request, timeout, during):
        """Send ``request`` (``"warm_up"``, ``"run"``) and return its answer (see :meth:`receive`)."""
        self._send({"do": request})
        return self.receive(timeout, during)

    def receive(self, timeout, during):
        """The child's next answer, or :class:`ChildFailed`; a child silent for ``timeout`` s is killed.

        ``during`` says what it was doing, for the reason: ``"while starting"``, ``"in run 2"``.
        """
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise ChildFailed("failed", f"no answer within {timeout:g} s {during}; stopped") from None
        if line is None:
            raise ChildFailed("failed", self._ended(during))
        answer = json.loads(line)
        if "error" in answer:
            raise ChildFailed(answer["status"], answer["error"])
        return answer["ok"]

    def _ended(self, during):
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # it closed its output but lives on
            self.kill()
            code = self.process.returncode
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exit status {code}"
        last = _last_line(self.stderr)
        return f"the process ended {during} ({how})" + (f": {last}" if last else "")

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self):
        """Ask the child to stop (it ends once its current request is answered)."""
        if self.process.poll() is None and not self.process.stdin.closed:
            self._send({"do": "stop"})
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def close(self, grace=2.0):
        """Stop the child, killed if it has not ended within ``grace`` seconds; release its files. Idempotent."""
        self.stop()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self.reader.join(timeout=1)  # it reads to the end of the ended child's output
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self.stderr is not None:
            self.stderr.close()


def close_all(children, grace=1.0):
    """:meth:`Child.close` each of ``children``, all asked to stop at once and given ``grace`` seconds in all
    (TensorFlow's may take longer to end: they are idle, and killed)."""
    for child in children:
        child.stop()
    deadline = time.monotonic() + grace
    for child in children:
        child.close(max(0.0, deadline - time.monotonic()))


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(file, limit=300):
    """The last non-blank line of what the child wrote to standard error, shortened to ``limit``."""
    if file is None:  # shown, not kept
        return ""
    try:
        file.seek(0, os.SEEK_END)
        file.seek(max(0, file.tell() - 8192))
        lines = [line.strip() for line in file.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except (OSError, ValueError):
        return ""
    if not lines:
        return ""
    return lines[-1] if len(lines[-1]) <= limit else lines[-1][:limit - 3] + "..."

"""The child process of ``twinnet check``: runs a learner's code, and nothing else, in its sandbox.

Run as a script, ``python -I -S _worker.py READ_FD WRITE_FD PACKAGES``, by
:mod:`twinnet.check.runner`. It needs only the standard library and NumPy (PACKAGES: the folders
of NumPy and SciPy, where twinnet is not importable; SciPy for the reference in phase two). It
parses the learner's code before running any of it, runs it, calls its functions on the inputs
the parent sends and sends back their raw outputs; every comparison and verdict is made by the
parent.

The protocol, shared with the parent: a message is a 4-byte length, a JSON header and the
``.npy`` bytes of the arrays it holds (written and read with ``allow_pickle=False``). Nothing in
a message can run code when it is read, and every length is bounded before it is read.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # before NumPy's import: the only packages this process may import
    sys.path[:0] = sys.argv[3].split(":")

import ast  # noqa: E402
import dis  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

MAX_HEADER = 4 << 20  # bytes of the JSON header of a message from this process (what twinnet reads)
# ... of a request from twinnet (what this process reads): a load holds the learner's code, at most
# 4 MB of it (check/source.py reads no more), which JSON writes in at most 6 bytes a byte (\u0001),
# and the statements skipped, one a restart
MAX_REQUEST = 6 * (4 << 20) + (8 << 20)
MAX_DATA = 64 << 20  # bytes of the arrays of one message (the largest a check sends: ~5 MB)
MAX_ARRAYS = 10_000
MAX_DEPTH = 40  # nesting of lists, tuples and dicts in one value
_LENGTH = struct.Struct("<Q")


class ProtocolError(Exception):
    """A message that breaks the protocol: too long, malformed, late, or the other side is gone."""


# -- values <-> JSON and .npy bytes ---------------------------------------------------------------

def encode(value, arrays, depth=0):
    """``value`` as JSON-able data; its arrays are appended to ``arrays`` as ``.npy`` bytes."""
    if depth > MAX_DEPTH:
        return {"o": "a value nested too deep"}
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.hasobject:
            return {"o": "an array of Python objects"}
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, allow_pickle=False)
        arrays.append(buffer.getvalue())
        return {"s" if isinstance(value, np.generic) else "a": len(arrays) - 1}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return {"l" if isinstance(value, list) else "t": [encode(v, arrays, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"d": [[encode(k, arrays, depth + 1), encode(v, arrays, depth + 1)] for k, v in value.items()]}
    return {"o": type(value).__name__}


class Other:
    """A stand-in for a value that is not data (a function, a module...), named by its type.

    One class for every name: a class made per name would stay in memory for good, one per
    distinct name that a hostile reply can send.
    """

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = str(name)[:100]

    def __repr__(self):
        return f"<{self.name}>"


def decode(data, arrays, depth=0):
    """The value :func:`encode` made, from untrusted data: a bad one raises :class:`ProtocolError`."""
    if depth > MAX_DEPTH:
        raise ProtocolError("a value nested too deep")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if not (isinstance(data, dict) and len(data) == 1):
        raise ProtocolError("a malformed value")
    [(tag, body)] = data.items()
    if tag in ("a", "s") and isinstance(body, int) and not isinstance(body, bool) and 0 <= body < len(arrays):
        array = arrays[body]
        return array[()] if tag == "s" and array.ndim == 0 else array
    if tag in ("l", "t") and isinstance(body, list):
        items = [decode(v, arrays, depth + 1) for v in body]
        return items if tag == "l" else tuple(items)
    if tag == "d" and isinstance(body, list):
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ProtocolError("a malformed dict")
            key = decode(pair[0], arrays, depth + 1)
            try:
                out[key] = decode(pair[1], arrays, depth + 1)
            except TypeError:  # an unhashable key
                raise ProtocolError("a malformed dict key") from None
        return out
    if tag == "o":
        return Other(body)
    raise ProtocolError("a malformed value")


_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _read_array(data):
    """An array from its ``.npy`` bytes, once its header's shape and type are seen to hold exactly
    the bytes that follow (a header that claims terabytes is refused, not allocated)."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _HEADERS:
            raise ValueError(f"version {version}")
        shape, _, dtype = _HEADERS[version](stream)
        if dtype.hasobject or dtype.itemsize == 0 or math.prod(shape) * dtype.itemsize != len(data) - stream.tell():
            raise ValueError(f"{len(data) - stream.tell()} bytes for the shape {shape} of {dtype}")
        stream.seek(0)
        return np.lib.format.read_array(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as exc:
        raise ProtocolError(f"a malformed array ({exc})") from None


# -- messages -------------------------------------------------------------------------------------

def send(fd, kind, body=None, deadline=None):
    """Write one message; with a ``deadline`` (monotonic; ``fd`` non-blocking), ``TimeoutError``
    once it passes: a child that stops reading cannot block the parent."""
    arrays = []
    # UTF-8: a character outside ASCII takes its own 2 to 4 bytes, not the 6 or 12 of \uXXXX;
    # surrogatepass: a lone surrogate (a notebook's JSON may hold one) arrives as json.loads reads bytes
    header = json.dumps({"kind": kind, "body": encode(body, arrays)}, allow_nan=True,
                        ensure_ascii=False).encode("utf-8", "surrogatepass")
    lengths = json.dumps([len(a) for a in arrays]).encode()
    message = b"".join([_LENGTH.pack(len(header)), header, _LENGTH.pack(len(lengths)), lengths, *arrays])
    view = memoryview(message)
    while view:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise TimeoutError
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # the pipe filled up between select and write
            pass


def _read(fd, n, deadline):
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise ProtocolError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd, deadline=None, max_header=MAX_HEADER):
    """The next message as ``(kind, body)``, its JSON headers at most ``max_header`` bytes;
    ``TimeoutError`` once ``deadline`` (monotonic) passes."""
    (size,) = _LENGTH.unpack(_read(fd, _LENGTH.size, deadline))
    if size > max_header:
        raise ProtocolError(f"a header of {size} bytes")
    try:
        header = json.loads(_read(fd, size, deadline))
        (size,) = _LENGTH.unpack(_read(fd, _LENGTH.size, deadline))
        lengths = json.loads(_read(fd, size, deadline)) if size <= max_header else None
    except (ValueError, RecursionError):
        raise ProtocolError("a malformed header") from None
    if not (isinstance(header, dict) and isinstance(header.get("kind"), str) and isinstance(lengths, list)
            and len(lengths) <= MAX_ARRAYS and all(isinstance(n, int) and n >= 0 for n in lengths)
            and sum(lengths) <= MAX_DATA):
        raise ProtocolError("a malformed header")
    arrays = [_read_array(_read(fd, n, deadline)) for n in lengths]
    return header["kind"], decode(header.get("body"), arrays)


# -- the learner's code ---------------------------------------------------------------------------

def _error(exc, memory=None):
    if isinstance(exc, MemoryError) and memory:
        return f"MemoryError: used more than {memory} MB of memory"
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")[:500]


def _limit(limits):
    """The resource limits, lowered for good before any of the learner's code runs."""
    import resource

    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def _takes_reference(tree):
    """The line of the first import of twinnet (``import twinnet``, ``from twinnet... import``, or a
    string naming it, as ``importlib.import_module("twinnet.functional")`` takes), or None."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        else:
            continue
        if any(name == "twinnet" or name.startswith("twinnet.") for name in names):
            return node.lineno
    return None


def _is_ipython(statement):
    """Whether IPython's input transformer made this statement (``get_ipython().system(...)``)."""
    return any(isinstance(node, ast.Name) and node.id == "get_ipython" for node in ast.walk(statement))


def parse(cells):
    """Each cell's syntax tree: what the parent must know before any of the learner's code runs.

    Returns the statements, as (cell, tree) pairs, and the facts: each statement's place, the
    exercise's functions that a ``def`` defines, where the code names twinnet, and notes on the
    cells skipped.
    """
    statements, places, defined, notes, takes = [], [], set(), [], None
    for k, (label, text) in enumerate(cells):
        try:
            tree = ast.parse(text, filename=label or "<learner>")
        except SyntaxError as exc:
            if len(cells) == 1:
                return [], {"error": f"does not parse: line {exc.lineno or 0}: {exc.msg}"}
            notes.append([k, exc.lineno or 0, f"does not parse ({exc.msg}); the cell was skipped"])
            continue
        except (RecursionError, MemoryError, ValueError) as exc:  # nesting too deep, a null byte
            if len(cells) == 1:
                return [], {"error": f"does not parse: {_error(exc)}"}
            notes.append([k, 0, f"does not parse ({_error(exc)}); the cell was skipped"])
            continue
        line = _takes_reference(tree)
        if line is not None and takes is None:
            takes = [k, line]
        defined |= {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        for statement in tree.body:
            if _is_ipython(statement):
                notes.append([k, statement.lineno, "IPython syntax (a magic, a shell command or help) skipped"])
                continue
            statements.append((k, statement))
            places.append([k, statement.lineno])
    if not cells:
        return [], {"error": "holds no code"}
    return statements, {"places": places, "defined": sorted(defined), "takes_reference": takes,
                        "notes": notes, "error": ""}


def load(statements, skip, filename, memory, reply):
    """Execute the module statement by statement: one that fails does not stop the next ones, so
    the functions are defined even when the data loading above them fails."""
    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    failures, failed_imports = [], {}
    for k, (cell, statement) in enumerate(statements):
        if k in skip:
            continue
        reply("statement", k)
        try:
            code = compile(ast.Module([statement], type_ignores=[]), filename, "exec")
            exec(code, namespace)  # noqa: S102  (running the learner's file is the point)
        except BaseException as exc:  # noqa: BLE001  (SystemExit and KeyboardInterrupt are the learner's too)
            failures.append([cell, statement.lineno, _error(exc, memory)])
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                for alias in statement.names:
                    failed_imports[alias.asname or alias.name.split(".")[0]] = _error(exc, memory)
    return namespace, failures, failed_imports


def _global_names(function):
    names, codes = set(), [function.__code__]
    while codes:  # nested functions and comprehensions have code objects of their own
        code = codes.pop()
        names |= {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return names


def facts(function, namespace, functions):
    """What the function reads as globals: the exercise's functions it calls, and the names that
    hold data or are not defined at all (the arguments it should have used instead). Plain lists:
    they shape a diagnosis's words, never a verdict."""
    names = _global_names(function)
    builtin = vars(__builtins__) if isinstance(__builtins__, types.ModuleType) else __builtins__
    data = sorted(n for n in names if n not in functions and (
        (n not in namespace and n not in builtin)
        or (n in namespace and not callable(namespace[n]) and not isinstance(namespace[n], types.ModuleType))))
    return {"calls": [n for n in functions if n in names and n != function.__name__], "globals": data}


def call(function, args, seed):
    """One call of the learner's function: what it returned or raised, its arguments after the
    call (to see what it changed in place) and the floating-point errors it met."""
    float_errors = []
    if seed is not None:
        np.random.seed(seed)
    old = np.seterrcall(lambda kind, flag: float_errors.append(kind))
    outcome = {"args": args, "result": None, "raised": None}
    try:
        with np.errstate(over="call", divide="call", invalid="call", under="ignore"):
            outcome["result"] = function(*args)
    except Exception as exc:  # noqa: BLE001  (whatever the learner's function raises is its result)
        outcome["raised"] = _error(exc, call.memory)
    finally:
        np.seterrcall(old)
    outcome["float_errors"] = sorted(set(float_errors))
    return outcome


call.memory = None


class _Unchecked:
    """``validation`` for the reference in phase two: its inputs are the parent's, already valid."""

    def __getattr__(self, name):
        return lambda argument, value, *rest, **options: value


def train(namespace, X, Y, dims, rate, iterations, seed):
    """The learner's L_layer_model from ``np.random.seed(seed)``: the parameters each call of its
    update_parameters received and the costs its compute_cost returned, for the parent to follow."""
    seen = {"update_parameters": [], "compute_cost": []}

    def spy(name):
        real = namespace[name]

        def recorded(*args, **kwargs):
            if name == "update_parameters" and len(seen[name]) <= iterations:
                parameters = args[0] if args else kwargs["parameters"]
                seen[name].append({k: np.array(v, dtype=float) for k, v in dict(parameters).items()})
            result = real(*args, **kwargs)
            if name == "compute_cost" and len(seen[name]) <= iterations:
                seen[name].append(float(np.squeeze(result)))
            return result
        return recorded

    saved = {name: namespace[name] for name in seen if name in namespace}
    namespace.update({name: spy(name) for name in saved})
    error = None
    try:
        np.random.seed(seed)
        with np.errstate(all="ignore"):
            namespace["L_layer_model"](X, Y, list(dims), rate, iterations, False)
    except Exception as exc:  # noqa: BLE001  (whatever the learner's training raises is reported)
        error = _error(exc, call.memory)
    finally:
        namespace.update(saved)
    return {"parameters": seen["update_parameters"], "costs": seen["compute_cost"], "error": error}


def main():
    """Answer the parent's requests until it closes the connection or says "stop"."""
    read_fd, write_fd = int(sys.argv[1]), int(sys.argv[2])
    sys.argv[:] = [sys.argv[0]]
    warnings.simplefilter("ignore")

    def reply(kind, body=None):
        send(write_fd, kind, body)

    reply("ready")
    kind, request = receive(read_fd, max_header=MAX_REQUEST)
    if kind != "load":
        return
    _limit(request["limits"])
    call.memory = request["memory"]
    statements, parsed = parse(request["cells"])
    reply("parsed", parsed)
    if parsed["error"] or parsed["takes_reference"]:
        return
    filename, functions = request["filename"], request["functions"]
    sys.argv[:] = [filename]
    sys.path.insert(0, os.path.dirname(filename))
    namespace, failures, failed_imports = load(statements, set(request["skip"]), filename,
                                               call.memory, reply)
    found = [n for n in functions if n in parsed["defined"] and isinstance(namespace.get(n), types.FunctionType)]
    reply("loaded", {"found": found, "failures": failures, "failed_imports": failed_imports,
                     "facts": {n: facts(namespace[n], namespace, functions) for n in found}})
    reference = None
    while True:
        kind, request = receive(read_fd, max_header=MAX_REQUEST)
        if kind == "call":
            saved = {h: namespace[h] for h in request["helpers"]}
            namespace.update({h: reference[h] for h in request["helpers"]})
            try:
                reply("outputs", [call(namespace[request["name"]], list(case["args"]), case["seed"])
                                  for case in request["cases"]])
            finally:
                namespace.update(saved)
        elif kind == "train":
            reply("trained", train(namespace, **request))
        elif kind == "reference":  # phase two, after every verdict's outputs were sent
            reference = {"validation": _Unchecked(), "__name__": "reference"}
            exec(compile(request, "twinnet/functional.py", "exec"), reference)  # noqa: S102  (our own code)
            reply("ready")
        else:
            return


if __name__ == "__main__":
    try:
        main()
    except ProtocolError:  # the parent is gone
        pass

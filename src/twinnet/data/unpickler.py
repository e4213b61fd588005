"""The allow-list unpickler: NumPy arrays of real numbers and plain containers, bounded by the file's size."""

from __future__ import annotations

import codecs
import io
import math
import pickle
import struct

import numpy as np


class _Refused(pickle.UnpicklingError):
    pass


class _NdarrayName:
    """What a pickle gets for ``numpy.ndarray``: only ``_reconstruct``'s first argument."""

    def __call__(self, *args, **kwargs):
        raise _Refused("refusing to call numpy.ndarray (it allocates any shape it is given)")


_NDARRAY = _NdarrayName()


def _checked_dtype(dtype):
    # Data is numeric: refusing object, text and structured dtypes keeps every array a flat block
    # of bytes whose size the file itself holds.
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or dtype.fields or dtype.subdtype:
        raise _Refused(f"refusing dtype {dtype!r}: only arrays of real numbers are allowed")
    return dtype


def _checked_shape(shape):
    if not (isinstance(shape, tuple) and len(shape) <= 32
            and all(type(n) is int and n >= 0 for n in shape)):
        raise _Refused(f"refusing array shape {str(shape)[:80]}")
    return math.prod(shape)


class SafeUnpickler(pickle._Unpickler):
    """An allow-list unpickler whose memory and time are bounded by the size of its input.

    It is pickle's own pure-Python unpickler (one step per opcode; no opcode allocates more than its
    argument's size) with the steps that could do more replaced: the NumPy constructors charge the
    array data they build to a budget of twice the file's size (every array of an honest pickle is
    stored once in the file, so a pickle whose memo references make NumPy copy one buffer many
    times is refused), dict keys must be strings (a key made of tuples that share one another takes
    exponential time to hash), and sets are refused.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: RUF012  (pickle's own per-class table, edited below)

    def __init__(self, raw: bytes):
        super().__init__(io.BytesIO(raw))
        # Twice the file: protocol 2 stores an array's data as a str that _codecs.encode turns into
        # bytes, which the array's state then copies; protocols 3-5 copy each byte once.
        self.budget = 2 * len(raw)
        self.globals = {
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): self._dtype,
            ("_codecs", "encode"): self._encode,
        }
        for core in ("numpy.core", "numpy._core"):  # NumPy 1.x pickles name numpy.core
            self.globals[(f"{core}.multiarray", "_reconstruct")] = self._reconstruct
            self.globals[(f"{core}.multiarray", "scalar")] = self._scalar
            self.globals[(f"{core}.numeric", "_frombuffer")] = self._frombuffer

    def find_class(self, module, name):
        try:
            return self.globals[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(
                f"refusing to unpickle {str(module)[:80]}.{str(name)[:80]}: only NumPy arrays and "
                "plain containers are allowed"
            ) from None

    def _charge(self, nbytes):
        self.budget -= nbytes
        if self.budget < 0:
            raise _Refused(
                "refusing a pickle that builds more array data than the file holds (its memo "
                "references copy one buffer many times)"
            )

    def _dtype(self, obj, align=False, copy=False):
        if not isinstance(obj, str) or len(obj) > 8:
            raise _Refused(f"refusing dtype {str(obj)[:80]!r}")
        return _checked_dtype(np.dtype(obj, align=bool(align), copy=bool(copy)))

    def _encode(self, obj, encoding="utf-8"):
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
            raise _Refused("refusing _codecs.encode other than of a str to latin1")
        self._charge(len(obj))
        return codecs.encode(obj, encoding)

    def _reconstruct(self, subtype, shape, typecode):
        # NumPy pickles an array as an empty one, _reconstruct(ndarray, (0,), b'b'), whose data
        # and shape come with its state (load_build); any other shape would be allocated here.
        if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
            raise _Refused("refusing numpy _reconstruct other than of an empty ndarray")
        return np._core.multiarray._reconstruct(np.ndarray, (0,), b"b")

    def _scalar(self, dtype, data):
        _checked_dtype(dtype)
        self._charge(dtype.itemsize)
        return np._core.multiarray.scalar(dtype, data)

    def _frombuffer(self, buf, dtype, shape, order, axis_order=None):
        dtype = _checked_dtype(np.dtype(dtype) if isinstance(dtype, str) and len(dtype) <= 8 else dtype)
        self._charge(_checked_shape(shape) * dtype.itemsize)
        return np._core.numeric._frombuffer(buf, dtype, shape, order, axis_order)

    def load_build(self):
        state, inst = self.stack.pop(), self.stack[-1]
        if isinstance(inst, np.dtype):  # byte order; anything that makes it non-numeric is refused
            inst.__setstate__(state)
            _checked_dtype(inst)
        elif type(inst) is np.ndarray and isinstance(state, tuple) and len(state) == 5:
            _, shape, dtype, _, raw = state
            nbytes = _checked_shape(shape) * _checked_dtype(dtype).itemsize
            if not isinstance(raw, (bytes, bytearray)) or len(raw) != nbytes:
                raise _Refused(f"refusing an array of shape {shape} whose data is not {nbytes} bytes")
            self._charge(nbytes)  # __setstate__ copies the data
            inst.__setstate__(state)
        else:
            raise _Refused(f"refusing to set the state of a {type(inst).__name__}")

    def load_setitem(self):
        self._check_keys(self.stack[-3], self.stack[-2:-1])
        super().load_setitem()

    def load_setitems(self):
        self._check_keys(self.metastack[-1][-1], self.stack[::2])
        super().load_setitems()

    def load_dict(self):
        self._check_keys({}, self.stack[::2])
        super().load_dict()

    def load_set(self):
        raise _Refused("refusing a set: only NumPy arrays and plain containers are allowed")

    @staticmethod
    def _check_keys(target, keys):
        if type(target) is not dict or not all(type(k) is str for k in keys):
            raise _Refused("refusing a dict whose keys are not strings")

    for _opcode, _method in [(pickle.BUILD, load_build), (pickle.SETITEM, load_setitem),
                             (pickle.SETITEMS, load_setitems), (pickle.DICT, load_dict),
                             (pickle.EMPTY_SET, load_set), (pickle.ADDITEMS, load_set),
                             (pickle.FROZENSET, load_set)]:
        dispatch[_opcode[0]] = _method
    del _opcode, _method


def safe_unpickle(raw: bytes, source: str):
    """``raw`` read by :class:`SafeUnpickler`; what it refuses or cannot read is a ``ValueError`` naming ``source``."""
    try:
        return SafeUnpickler(raw).load()
    except _Refused as exc:
        raise ValueError(f"{source}: not a safe data pickle ({exc}).") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, MemoryError, OverflowError, struct.error, RecursionError) as exc:
        raise ValueError(
            f"{source}: empty, truncated or corrupted pickle ({type(exc).__name__}: {str(exc)[:200]})."
        ) from None

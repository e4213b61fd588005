"""Reading untrusted files within bounds: regular files only, ``.npz`` members checked before they are read.

The primitives under every reader of a user's file: :mod:`twinnet.data`'s loaders,
``Network.load`` and the lab's store. A limit ``max_bytes`` (default 4 GiB, or
``$TWINNET_MAX_BYTES``) bounds what a file may make twinnet allocate.
"""

from __future__ import annotations

import errno
import math
import os
import stat

import numpy as np

#: The default of ``max_bytes``: the most memory a loaded data set may take, counted as 8 bytes (one
#: float64, as twinnet holds data) per value. 4 GiB is over a thousand times the largest data set the
#: project itself uses and fits the machines it runs on; a file that declares more (an .npz header
#: saying a petabyte, a zip bomb) is refused before anything that size is allocated.
DEFAULT_MAX_BYTES = 4 * 2**30
MAX_BYTES_ENV = "TWINNET_MAX_BYTES"


def check_max_bytes(max_bytes):
    """``max_bytes`` as given, else ``$TWINNET_MAX_BYTES``, else 4 GiB; checked."""
    name = "max_bytes"
    if max_bytes is None:
        max_bytes, name = os.environ.get(MAX_BYTES_ENV) or DEFAULT_MAX_BYTES, MAX_BYTES_ENV
    try:
        value = int(max_bytes)
    except (TypeError, ValueError):
        value = 0
    if value <= 0 or isinstance(max_bytes, (bool, float)):
        raise ValueError(f"{name} must be a positive whole number of bytes; got {name}={max_bytes!r}.")
    return value


def too_big(source, what, nbytes, max_bytes):
    """The error refusing ``what`` of ``source``, which would take ``nbytes``, more than ``max_bytes``."""
    return ValueError(
        f"{source}: {what} would take {nbytes:,} bytes, more than the limit max_bytes={max_bytes:,} "
        f"(raise it with --max-bytes or {MAX_BYTES_ENV} if the data is meant to be that big)."
    )


def open_regular(path, expected="a data file"):
    """Open ``path`` to read bytes, refusing what is not a regular file; return the file and its size.

    A FIFO, device or socket (or a link to one) is refused at once rather than read forever or
    waited on; the messages name ``path`` and say what was ``expected``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a regular file, or it cannot be opened (the system's reason is in the message).
    """
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once (to be refused), not never.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FileNotFoundError(f"{source}: no such file.") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            raise ValueError(f"{source}: is not a regular file (a socket); expected {expected}.") from None
        raise ValueError(f"{source}: cannot be opened ({exc.strerror}).") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{source}: is a directory, expected {expected}.")
        raise ValueError(f"{source}: is not a regular file (a FIFO, device or socket); expected {expected}.")
    return open(fd, "rb"), st.st_size


def npz_member(zf, key, source, max_bytes, values_before=0, check=None):
    """One array of an .npz, its header checked before NumPy allocates what it declares.

    ``check(shape, dtype)``, when given, sees the header first and raises to refuse the array.
    """
    fmt = np.lib.format
    infos = [info for info in zf.infolist() if info.filename == f"{key}.npy"]
    if len(infos) != 1:
        raise ValueError(
            f"{source}: " + (f"holds {key!r} {len(infos)} times." if infos else
                             f"missing key(s) {key!r}; expected 'features' and 'labels', found "
                             f"{sorted(n.removesuffix('.npy')[:40] for n in zf.namelist())[:10]}.")
        )
    info = infos[0]
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{source}: {key!r} is an .npy of unsupported version {version}.")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read_header(f)
        header = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{source}: the .npz holds object arrays, which are refused.")
    if check is not None:
        check(shape, dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    need = 8 * values_before + max(nbytes, 8 * math.prod(shape))  # as read, or as float64
    if need > max_bytes:
        what = f"{key!r} of shape {shape}" + (" with the arrays before it" if values_before else "")
        raise too_big(source, what, need, max_bytes)
    if header + nbytes != info.file_size:
        raise ValueError(
            f"{source}: {key!r} declares shape {shape} ({nbytes:,} bytes of {dtype}) but holds "
            f"{info.file_size - header:,} bytes: truncated or corrupted."
        )
    with zf.open(info) as f:
        return fmt.read_array(f, allow_pickle=False)

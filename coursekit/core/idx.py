"""The IDX file format of (Fashion-)MNIST: read, write, and a verified download.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header
``0x00 0x00 <dtype code> <ndim>``, one uint32 per dimension, then the raw array.
Files are usually gzip-compressed.

Checksums are SHA-256 of the *uncompressed* payload: mirrors re-compress the same
data (Debian's ``dataset-fashion-mnist`` ships other ``.gz`` bytes than the
official site), so the payload, not the gzip wrapper, identifies the data.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder(">"): k for k, v in _DTYPES.items()}


class ChecksumError(ValueError):
    """A file's content does not match the SHA-256 it should have."""


def _open(path: Path):
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _broken(path: Path, err: Exception) -> str:
    return (f"IDX file {path} is truncated or corrupted ({type(err).__name__}: {err}); delete it and fetch "
            "it again (`coursekit data fetch`)")


def _read_all(path: Path) -> bytes:
    try:
        with _open(path) as fh:
            return fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(_broken(path, err)) from err


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or gzipped) into a NumPy array of its shape and dtype."""
    path = Path(path)
    raw = _read_all(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()!r})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">u4"))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes) "
                         f"but the file holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzip it when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    if not isinstance(array, np.ndarray):
        raise ValueError(f"write_idx takes a NumPy array, got {type(array).__name__} (use np.asarray with a dtype)")
    dtype = array.dtype.newbyteorder(">")
    if dtype not in _CODES:
        raise ValueError(f"dtype {array.dtype} has no IDX code; use one of "
                         f"{sorted(str(np.dtype(d)) for d in _DTYPES.values())}")
    header = bytes([0, 0, _CODES[dtype], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return path


def payload_sha256(path: str | Path) -> str:
    """SHA-256 of the file's content after gunzip (of the file itself when not gzipped)."""
    digest = hashlib.sha256()
    try:
        with _open(Path(path)) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except (EOFError, OSError) as err:
        raise ValueError(_broken(Path(path), err)) from err
    return digest.hexdigest()


def download(url: str, dest: str | Path, sha256: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and check the payload's SHA-256.

    The file is written under a temporary name and moved into place only once its
    checksum matches, so an interrupted or corrupted download never leaves a file
    that looks complete. A mismatch raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        try:
            got = payload_sha256(tmp)
        except (OSError, ValueError) as err:  # truncated or broken gzip stream
            raise ChecksumError(f"download of {url} is not readable ({err}); nothing was kept") from err
        if got != sha256:
            raise ChecksumError(f"download of {url} has SHA-256 {got}, expected {sha256}; "
                                "the file was corrupted or changed upstream, nothing was kept")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest

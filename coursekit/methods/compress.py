"""Storing a pruned network: bytes per format and the Deep Compression pipeline.

A pruned weight tensor still takes ``4 × numel`` bytes as dense fp32. To save memory it
must be *stored* sparsely, and every sparse format pays for positions:

=================  ===================================================  ==========================
format             stores                                               bytes
=================  ===================================================  ==========================
dense              every entry as fp32                                  ``4·n``
bitmask            one bit per entry, then the nonzero values           ``⌈n/8⌉ + 4·nnz``
CSR                row pointers, column indices, values (2-D only)      ``(rows+1)·a + nnz·(b+4)``
COO                one index per dimension per nonzero, values          ``nnz·(Σ bᵢ + 4)``
Deep Compression   relative positions + k-means codes, Huffman-coded    see :class:`DeepCompressed`
=================  ===================================================  ==========================

Index widths (``a``, ``b``, ``bᵢ`` bytes) are the smallest unsigned integer that holds the
largest index (:func:`index_dtype`: uint8, uint16, uint32 or uint64), so a 300-column
layer pays 2 bytes per column index and a 100-column one 1 byte.

Deep Compression (Han, Mao & Dally 2016) chains three stages: **prune** (magnitude,
then retrain with the mask), **quantise** (k-means over the nonzero weights of a layer
with a codebook of ``2^bits`` centroids, linearly initialised; each weight becomes a
``bits``-bit index) and **Huffman-code** both the indices and the gaps between nonzero
positions (the k-means and Huffman coders are in :mod:`coursekit.methods.coding`). In a notebook::

    mask = magnitude_mask(model, density=0.1)
    fit(model, data, hooks=[mask.hook(model)])   # retrain with pruned weights held at zero
    errors = quantize_model(model, bits=5)       # in place; max / rms error per layer
    table = deep_compression(model, bits=5)      # bytes and ratio per layer and stage

Memory is not speed: :mod:`coursekit.methods.sparse_speed` times dense, ``torch.sparse`` CSR and
a physically smaller dense layer side by side, and finds the density below which CSR
wins on this machine.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from coursekit.core.masks import Mask, prunable_parameters
from coursekit.core.pruning import Scope, mask_from_scores
from coursekit.methods.coding import Huffman, check_bits, kmeans

FLOAT_BYTES = 4
INDEX_DTYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def index_dtype(largest: int) -> np.dtype:
    """The smallest unsigned dtype that holds ``largest`` (uint8 up to 255, uint16 up to 65 535, ...).

    >>> index_dtype(255), index_dtype(256)
    (dtype('uint8'), dtype('uint16'))
    """
    if largest < 0:
        raise ValueError(f"an index is never negative, got largest={largest}")
    for dtype in INDEX_DTYPES:
        if largest <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise ValueError(f"largest index {largest} does not fit in 64 bits")


def _numpy(weight: torch.Tensor) -> np.ndarray:
    return weight.detach().cpu().float().numpy()


def dense_bytes(weight: torch.Tensor) -> int:
    """Bytes of ``weight`` stored as dense fp32: 4 per entry, zeros included."""
    return FLOAT_BYTES * weight.numel()


@dataclass(frozen=True)
class Bitmask:
    """One bit per entry (kept or not), then the kept values in order: ``⌈n/8⌉ + 4·nnz`` bytes."""

    shape: tuple[int, ...]
    bits: np.ndarray     # uint8, np.packbits of the flattened nonzero pattern
    values: np.ndarray   # float32, the nonzeros in row-major order

    def __post_init__(self) -> None:
        n = math.prod(self.shape)
        if self.bits.size != -(-n // 8):
            raise ValueError(f"a bitmask of shape {self.shape} needs {-(-n // 8)} bytes of bits, got {self.bits.size}")
        kept = int(np.unpackbits(self.bits, count=n).sum())
        if kept != len(self.values):
            raise ValueError(f"the bitmask keeps {kept} positions but holds {len(self.values)} values")

    @classmethod
    def encode(cls, weight: torch.Tensor) -> Bitmask:
        w = _numpy(weight).ravel()
        return cls(tuple(weight.shape), np.packbits(w != 0), w[w != 0])

    def decode(self) -> torch.Tensor:
        n = math.prod(self.shape)
        keep = np.unpackbits(self.bits, count=n).astype(bool)
        w = np.zeros(n, np.float32)
        w[keep] = self.values
        return torch.from_numpy(w).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes + self.values.nbytes


@dataclass(frozen=True)
class CSR:
    """Compressed sparse rows of a 2-D weight: row pointers, column indices, values.

    Row ``i``'s nonzeros are ``values[indptr[i]:indptr[i+1]]`` in columns
    ``indices[indptr[i]:indptr[i+1]]``; ``indptr`` holds counts up to ``nnz`` and
    ``indices`` columns up to ``cols - 1``, each in the narrowest dtype (:func:`index_dtype`).
    """

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or len(self.indptr) != self.shape[0] + 1:
            raise ValueError(f"CSR of shape {self.shape} needs {self.shape[0] + 1} row pointers, got {len(self.indptr)}")
        if not int(self.indptr[-1]) == len(self.indices) == len(self.values):
            raise ValueError(f"CSR row pointers end at {int(self.indptr[-1])} but there are {len(self.indices)} "
                             f"column indices and {len(self.values)} values")

    @classmethod
    def encode(cls, weight: torch.Tensor) -> CSR:
        if weight.dim() != 2:
            raise ValueError(f"CSR stores 2-D matrices, got shape {tuple(weight.shape)}; reshape a "
                             "conv weight first, e.g. weight.reshape(weight.shape[0], -1)")
        w = _numpy(weight)
        rows, cols = np.nonzero(w)
        if rows.size == 0:
            raise ValueError(f"the {tuple(weight.shape)} weight has no nonzero entries: an empty layer "
                             "(pruned to nothing, a collapsed layer) has nothing to store in CSR and "
                             "disconnects the network; check Mask.table() for layers with kept == 0")
        counts = np.bincount(rows, minlength=w.shape[0])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return cls(tuple(w.shape), indptr.astype(index_dtype(rows.size)),
                   cols.astype(index_dtype(w.shape[1] - 1)), w[rows, cols])

    def decode(self) -> torch.Tensor:
        return self.to_torch().to_dense()

    def to_torch(self) -> torch.Tensor:
        """The same matrix as a ``torch.sparse_csr_tensor`` (int64 indices), for ``@``."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(torch.from_numpy(self.indptr.astype(np.int64)),
                                           torch.from_numpy(self.indices.astype(np.int64)),
                                           torch.from_numpy(self.values), self.shape,
                                           check_invariants=True)

    @property
    def nbytes(self) -> int:
        return self.indptr.nbytes + self.indices.nbytes + self.values.nbytes


@dataclass(frozen=True)
class COO:
    """Coordinates: for every nonzero one index per dimension (each dimension its own width), and its value."""

    shape: tuple[int, ...]
    indices: tuple[np.ndarray, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.shape) or any(len(i) != len(self.values) for i in self.indices):
            raise ValueError(f"COO of shape {self.shape} needs {len(self.shape)} index arrays of one entry per "
                             f"value ({len(self.values)}), got lengths {[len(i) for i in self.indices]}")

    @classmethod
    def encode(cls, weight: torch.Tensor) -> COO:
        w = _numpy(weight)
        where = np.nonzero(w)
        indices = tuple(i.astype(index_dtype(max(size - 1, 0)))
                        for i, size in zip(where, w.shape, strict=True))
        return cls(tuple(w.shape), indices, w[where])

    def decode(self) -> torch.Tensor:
        w = np.zeros(self.shape, np.float32)
        w[tuple(i.astype(np.int64) for i in self.indices)] = self.values
        return torch.from_numpy(w)

    @property
    def nbytes(self) -> int:
        return sum(i.nbytes for i in self.indices) + self.values.nbytes


def relative_positions(keep: np.ndarray, index_bits: int) -> np.ndarray:
    """Nonzero positions as gaps of ``index_bits`` bits (Han et al. 2016's relative index).

    Each nonzero stores the number of zeros skipped since the previous one. A gap too
    large for ``index_bits`` is split: the largest symbol ``2^index_bits - 1`` means
    "skip that many positions, no weight here" (Han et al. pad with a zero weight
    instead; a skip symbol saves that filler's value).

    >>> relative_positions(np.array([0, 1, 0, 0, 0, 0, 0, 1], bool), 2).tolist()
    [1, 3, 2]
    """
    check_bits(index_bits, "index_bits")
    skip = 2 ** index_bits - 1
    where = np.flatnonzero(np.asarray(keep).ravel())
    gaps = np.diff(where, prepend=-1) - 1
    n_skips = gaps // skip
    out = np.full(int(n_skips.sum()) + where.size, skip, dtype=np.int64)
    out[np.cumsum(n_skips + 1) - 1] = gaps % skip
    return out


def absolute_positions(symbols: np.ndarray, index_bits: int) -> np.ndarray:
    """Flat positions of the nonzeros from :func:`relative_positions`' symbols (its inverse)."""
    skip = 2 ** index_bits - 1
    symbols = np.asarray(symbols, dtype=np.int64)
    is_skip = symbols == skip
    return (np.cumsum(np.where(is_skip, skip, symbols + 1)) - 1)[~is_skip]


@dataclass(frozen=True)
class DeepCompressed:
    """One weight tensor after Deep Compression: Huffman-coded gaps and codes, and a codebook.

    Bytes per stage (:meth:`stage_bytes`), with ``e`` relative-index entries (nonzeros
    plus skips) and ``k = 2^bits`` centroids:

    * ``dense``: ``4·n``; ``pruned``: ``(e·index_bits + 32·nnz) / 8`` (fp32 values);
    * ``quantized``: ``(e·index_bits + bits·nnz) / 8 + 4·k`` (codes and codebook);
    * ``huffman``: both streams Huffman-coded, plus their tables and the codebook.

    Headers (shape, counts) are a few bytes per layer and are not counted.
    """

    shape: tuple[int, ...]
    bits: int
    index_bits: int
    codebook: np.ndarray  # float32 centroids
    gaps: Huffman
    codes: Huffman
    max_error: float      # largest |w - quantised w| over the nonzeros

    @classmethod
    def encode(cls, weight: torch.Tensor, bits: int = 5, index_bits: int = 5) -> DeepCompressed:
        """Quantise the nonzeros of ``weight`` with :func:`kmeans`, then Huffman-code gaps and codes."""
        check_bits(index_bits, "index_bits")
        w = weight.detach().cpu().float().flatten()
        keep = w != 0
        codebook, codes = kmeans(w[keep], bits)
        error = float((codebook[codes] - w[keep]).abs().max())
        gaps = relative_positions(keep.numpy(), index_bits)
        return cls(tuple(weight.shape), bits, index_bits, codebook.numpy(),
                   Huffman.encode(gaps, 2 ** index_bits), Huffman.encode(codes.numpy(), 2 ** bits), error)

    def decode(self) -> torch.Tensor:
        """The quantised weight, exactly, from the Huffman-coded streams."""
        w = np.zeros(math.prod(self.shape), np.float32)
        w[absolute_positions(self.gaps.decode(), self.index_bits)] = self.codebook[self.codes.decode()]
        return torch.from_numpy(w).reshape(self.shape)

    def stage_bytes(self) -> dict[str, int]:
        """Bytes after each stage of the pipeline: dense, pruned, quantized, huffman."""
        entries, nnz, table = self.gaps.count, self.codes.count, FLOAT_BYTES * self.codebook.size
        index = entries * self.index_bits
        return {"dense": FLOAT_BYTES * math.prod(self.shape),
                "pruned": math.ceil((index + 32 * nnz) / 8),
                "quantized": math.ceil((index + self.bits * nnz) / 8) + table,
                "huffman": self.gaps.nbytes + self.codes.nbytes + table}


def storage_table(weight: torch.Tensor, bits: int = 5, index_bits: int = 5) -> pd.DataFrame:
    """Bytes of one weight tensor in every format, its ratio to dense fp32, and the error.

    CSR sees a conv weight as its ``(out, in·k·k)`` matrix. The lossless formats decode to
    exactly ``weight`` (``max_error`` 0); the k-means rows report the largest error of a
    weight. Small tensors show what the tables cost: Huffman pays a byte per symbol.
    """
    matrix = weight.reshape(weight.shape[0], -1) if weight.dim() > 2 else weight
    deep = DeepCompressed.encode(weight, bits, index_bits)
    stages = deep.stage_bytes()
    rows = [("dense", dense_bytes(weight), 0.0), ("bitmask", Bitmask.encode(weight).nbytes, 0.0),
            ("csr", CSR.encode(matrix).nbytes, 0.0), ("coo", COO.encode(weight).nbytes, 0.0),
            ("relative index", stages["pruned"], 0.0),
            (f"k-means {bits}-bit", stages["quantized"], deep.max_error),
            (f"k-means {bits}-bit + Huffman", stages["huffman"], deep.max_error)]
    table = pd.DataFrame(rows, columns=["format", "bytes", "max_error"]).set_index("format")
    table.insert(1, "ratio", dense_bytes(weight) / table["bytes"])
    return table


def magnitude_mask(model: nn.Module, density: float, scope: Scope = "layerwise") -> Mask:
    """Stage 1 of Deep Compression: keep the largest ``|w|`` of the prunable weights (Han et al. 2015)."""
    return mask_from_scores({n: p.detach().abs() for n, p in prunable_parameters(model).items()},
                            density, scope)


def _layers(model: nn.Module, names: Iterable[str] | None) -> list[str]:
    """The layers to compress: ``names`` (checked against the model) or every prunable weight."""
    if names is None:
        return list(prunable_parameters(model))
    if isinstance(names, str):
        raise ValueError(f"names must be a list of parameter names, e.g. [{names!r}], got the string {names!r}")
    names, params = list(names), dict(model.named_parameters())
    if not names:
        raise ValueError("names is empty: no layer to compress")
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; the model has {list(prunable_parameters(model))}")
    return names


def _bits_of(bits: int | Mapping[str, int], name: str) -> int:
    if isinstance(bits, Mapping) and name not in bits:
        raise ValueError(f"bits gives no width for layer {name!r}; it names {sorted(bits)}")
    return bits[name] if isinstance(bits, Mapping) else bits


@torch.no_grad()
def quantize_model(model: nn.Module, bits: int | Mapping[str, int] = 5,
                   names: Iterable[str] | None = None) -> pd.DataFrame:
    """Stage 2: replace each layer's nonzero weights by their k-means centroid, in place.

    Zeros stay exactly zero, so a pruned model stays pruned. Han et al. use 8 bits for
    conv layers and 5 for fully connected ones: pass ``bits={name: bits}`` for that.

    Returns:
        per layer: ``bits``, ``nonzero``, ``centroids`` used, ``max_error`` and ``rms_error``
        of the nonzero weights.
    """
    params = dict(model.named_parameters())
    rows = []
    for name in _layers(model, names):
        p = params[name]
        keep = p != 0
        if not keep.any():
            raise ValueError(f"layer {name!r} has no nonzero weights to quantise (a collapsed layer?)")
        codebook, codes = kmeans(p[keep], _bits_of(bits, name))
        error = codebook[codes] - p[keep].float().cpu()
        p[keep] = codebook[codes].to(p.device, p.dtype)
        rows.append({"layer": name, "bits": _bits_of(bits, name), "nonzero": int(keep.sum()),
                     "centroids": int(torch.unique(codes).numel()),
                     "max_error": float(error.abs().max()), "rms_error": float(error.pow(2).mean().sqrt())})
    return pd.DataFrame(rows).set_index("layer")


def deep_compression(model: nn.Module, bits: int | Mapping[str, int] = 5, index_bits: int = 5,
                     names: Iterable[str] | None = None) -> pd.DataFrame:
    """Bytes and compression ratio of every layer, and of the whole model, after each stage.

    Run it after pruning, retraining and :func:`quantize_model` (then the quantised stage
    is lossless); on unquantised weights it quantises a copy with :func:`kmeans`.

    Returns:
        long form, one row per (layer, stage) and the ``total`` layer: ``layer``, ``stage``
        (dense, pruned, quantized, huffman), ``bytes`` and ``ratio`` (dense bytes / bytes).
    """
    params = dict(model.named_parameters())
    rows = []
    for name in _layers(model, names):
        stages = DeepCompressed.encode(params[name], _bits_of(bits, name), index_bits).stage_bytes()
        rows += [{"layer": name, "stage": s, "bytes": b} for s, b in stages.items()]
    table = pd.DataFrame(rows)
    total = table.groupby("stage", sort=False, as_index=False)["bytes"].sum().assign(layer="total")
    table = pd.concat([table, total[["layer", "stage", "bytes"]]], ignore_index=True)
    dense = table[table["stage"] == "dense"].set_index("layer")["bytes"]
    table["ratio"] = table["layer"].map(dense) / table["bytes"]
    return table

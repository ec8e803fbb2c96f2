"""Weight sharing and entropy coding, the last two stages of Deep Compression.

:func:`kmeans` replaces a layer's weights by ``2^bits`` shared values, so each weight is
stored as a ``bits``-bit index into a codebook (Han, Mao & Dally 2016, §3). :class:`Huffman`
then codes such indices (or the gaps between nonzero positions) with a canonical Huffman
code (Huffman 1952): frequent symbols get short codes, and the round trip is exact.
:mod:`coursekit.methods.compress` chains them into the pipeline and counts the bytes.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

MAX_BITS = 16


def check_bits(bits: int, what: str = "bits") -> None:
    """Refuse a bit width that is not an int in ``1..MAX_BITS``, naming ``what`` it was for."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"{what} must be an int in 1..{MAX_BITS}, got {bits!r}")


def kmeans(values: torch.Tensor, bits: int, iters: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """1-D k-means with ``2^bits`` centroids, linearly initialised (Han et al. 2016, §3.2).

    The centroids start evenly spaced between ``min`` and ``max`` of ``values`` (Han et al.
    found this keeps the rare large weights, which matter most, better than random or
    density-based starts); Lloyd's iterations then alternate "assign each value to the
    nearest centroid" and "move each centroid to the mean of its values" until no value
    changes cluster (or ``iters`` runs out). In 1-D a cluster is an interval of the sorted
    values between midpoints of neighbouring centroids, so one sort and a prefix sum make
    each iteration cost ``O(k log n)``. A centroid whose interval holds no value stays
    where it is, unused. With no more distinct values than centroids, the codebook is
    those values (lossless).

    Args:
        values: any shape; flattened.
        bits: index width; the codebook has at most ``2^bits`` entries.

    Returns:
        ``(codebook, codes)``: float32 centroids (sorted) and an int64 index per value;
        ``codebook[codes]`` is the quantised tensor (flattened), every value at its
        nearest centroid.
    """
    check_bits(bits)
    if not isinstance(values, torch.Tensor):
        raise ValueError(f"k-means takes a tensor of values, got {type(values).__name__} (use torch.as_tensor)")
    v = values.detach().flatten().float().cpu()
    if v.numel() == 0:
        raise ValueError("k-means needs at least one value (a layer with no nonzero weights?)")
    if not torch.isfinite(v).all():
        raise ValueError(f"k-means values must be finite, got {int((~torch.isfinite(v)).sum())} NaN or infinite "
                         "(weights that diverged?)")
    distinct = torch.unique(v)
    if distinct.numel() <= 2 ** bits:
        return distinct, torch.searchsorted(distinct, v)
    ordered = v.sort().values.double()
    prefix = torch.cat([ordered.new_zeros(1), ordered.cumsum(0)])
    centroids = torch.linspace(float(ordered[0]), float(ordered[-1]), 2 ** bits, dtype=torch.float64)
    cuts = None
    for _ in range(iters):
        new = torch.searchsorted(ordered, (centroids[1:] + centroids[:-1]) / 2, right=True)
        if cuts is not None and torch.equal(new, cuts):
            break
        cuts = new
        edges = torch.cat([cuts.new_zeros(1), cuts, cuts.new_full((1,), ordered.numel())])
        counts, sums = edges.diff(), prefix[edges[1:]] - prefix[edges[:-1]]
        centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
    codebook = centroids.float()
    return codebook, torch.bucketize(v, (codebook[1:] + codebook[:-1]) / 2)


def huffman_lengths(freqs: Mapping[int, int]) -> dict[int, int]:
    """Code length of each symbol of a Huffman code for ``freqs`` (symbol → count > 0).

    Huffman 1952: repeatedly merge the two least frequent subtrees; every merge adds one
    bit to the code of each symbol inside. Ties are broken by order of creation, so the
    result is repeatable. A lone symbol gets a 1-bit code.

    >>> huffman_lengths({0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5})  # CLRS's example
    {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    """
    if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c <= 0 for c in freqs.values()):
        raise ValueError(f"frequencies must be positive int counts, got {dict(freqs)}")
    if len(freqs) <= 1:
        return dict.fromkeys(freqs, 1)
    lengths = dict.fromkeys(freqs, 0)
    tiebreak = itertools.count()
    heap = [(count, next(tiebreak), [symbol]) for symbol, count in sorted(freqs.items())]
    heapq.heapify(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for symbol in s1 + s2:
            lengths[symbol] += 1
        heapq.heappush(heap, (c1 + c2, next(tiebreak), s1 + s2))
    return dict(sorted(lengths.items()))


def canonical_codes(lengths: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """Symbol → ``(code, length)`` of the canonical Huffman code with these lengths.

    Sorted by (length, symbol), each code is the previous one plus one, shifted left when
    the length grows; so the lengths alone define the code (what DEFLATE stores).

    >>> canonical_codes({0: 1, 1: 2, 2: 2})
    {0: (0, 1), 1: (2, 2), 2: (3, 2)}
    """
    codes, code, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        code <<= length - previous
        codes[symbol], code, previous = (code, length), code + 1, length
    return codes


@dataclass(frozen=True)
class Huffman:
    """Symbols ``0..alphabet-1`` Huffman-coded: one code length per symbol (the table) and the bits.

    ``nbytes`` counts the packed bits and one byte of table per symbol of the alphabet.
    """

    lengths: np.ndarray  # uint8 per symbol of the alphabet, 0 = unused
    data: bytes
    count: int

    @classmethod
    def encode(cls, symbols: np.ndarray, alphabet: int | None = None) -> Huffman:
        given = np.asarray(symbols)
        if given.size and not np.issubdtype(given.dtype, np.integer):
            raise ValueError(f"Huffman symbols must be integers, got {given.dtype} values")
        symbols = given.astype(np.int64).ravel()
        alphabet = alphabet if alphabet is not None else int(symbols.max(initial=-1)) + 1
        if symbols.size and (symbols.min() < 0 or symbols.max() >= alphabet):
            raise ValueError(f"symbols must lie in 0..{alphabet - 1}, got {symbols.min()}..{symbols.max()}")
        freqs = np.bincount(symbols, minlength=alphabet)
        lengths_of = huffman_lengths({s: int(c) for s, c in enumerate(freqs) if c})
        if max(lengths_of.values(), default=0) > 64:
            raise ValueError("a Huffman code longer than 64 bits: the counts are too skewed for this coder")
        lengths = np.zeros(alphabet, np.uint8)
        code = np.zeros(alphabet, np.uint64)
        for s, (c, n) in canonical_codes(lengths_of).items():
            lengths[s], code[s] = n, c
        chunks = []
        for start in range(0, symbols.size, 1 << 16):  # bounded memory: (chunk × longest code) bits
            s = symbols[start:start + (1 << 16)]
            n, c = lengths[s].astype(np.int64), code[s]
            shift = n[:, None] - 1 - np.arange(n.max())[None, :]
            bit = (c[:, None] >> np.maximum(shift, 0).astype(np.uint64)) & np.uint64(1)
            chunks.append(bit[shift >= 0].astype(bool))
        bits = np.concatenate(chunks) if chunks else np.zeros(0, bool)
        return cls(lengths, np.packbits(bits).tobytes(), int(symbols.size))

    def decode(self) -> np.ndarray:
        """The symbols back, exactly: read bits until they spell a code (no code is a prefix of another)."""
        codes = canonical_codes({s: int(n) for s, n in enumerate(self.lengths) if n})
        symbol_of = {(n, c): s for s, (c, n) in codes.items()}
        out = np.empty(self.count, np.int64)
        code = length = i = 0
        longest = int(self.lengths.max(initial=0))
        for bit in np.unpackbits(np.frombuffer(self.data, np.uint8)).tolist():
            if i == self.count:
                break
            code, length = (code << 1) | bit, length + 1
            symbol = symbol_of.get((length, code))
            if symbol is not None:
                out[i], i, code, length = symbol, i + 1, 0, 0
            elif length > longest:
                raise ValueError(f"the Huffman stream holds a bit pattern that is no code, after {i} symbols "
                                 "(corrupted data)")
        if i < self.count:
            raise ValueError(f"the Huffman stream ends after {i} of {self.count} symbols (truncated data or "
                             "wrong count)")
        return out

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.lengths.size

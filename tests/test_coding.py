"""k-means weight sharing and canonical Huffman coding (coursekit.methods.coding)."""

import math

import numpy as np
import pytest
import torch

from coursekit import coding
from coursekit.methods.coding import Huffman, huffman_lengths, kmeans


def test_huffman_lengths_of_a_known_table():
    """CLRS §16.3: a:45 b:13 c:12 d:16 e:9 f:5 → a 1 bit, b c d 3 bits, e f 4 bits (224 bits in all)."""
    freqs = {0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5}
    lengths = coding.huffman_lengths(freqs)
    assert lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    assert sum(freqs[s] * n for s, n in lengths.items()) == 224
    assert sum(2.0 ** -n for n in lengths.values()) == 1.0  # Kraft: a complete prefix code


def test_canonical_codes_are_consecutive_and_prefix_free():
    codes = coding.canonical_codes({0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4})
    assert codes == {0: (0b0, 1), 1: (0b100, 3), 2: (0b101, 3), 3: (0b110, 3),
                     4: (0b1110, 4), 5: (0b1111, 4)}
    words = [format(c, f"0{n}b") for c, n in codes.values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_huffman_round_trip_is_exact_and_as_long_as_the_code_says():
    gen = np.random.default_rng(0)
    symbols = gen.choice(16, size=5000, p=np.r_[[0.5, 0.2, 0.1], np.full(13, 0.2 / 13)])
    coded = Huffman.encode(symbols, alphabet=16)
    assert np.array_equal(coded.decode(), symbols)
    lengths = coding.huffman_lengths(dict(zip(*np.unique(symbols, return_counts=True), strict=True)))
    bits = sum(lengths[s] for s in symbols.tolist())
    assert len(coded.data) == math.ceil(bits / 8) and coded.nbytes == len(coded.data) + 16
    assert bits < 4 * symbols.size  # beats the fixed 4-bit code on a skewed source


@pytest.mark.parametrize("symbols", [np.array([3, 3, 3]), np.array([], dtype=np.int64)])
def test_huffman_of_one_symbol_or_none(symbols):
    coded = Huffman.encode(symbols, alphabet=4)
    assert np.array_equal(coded.decode(), symbols)


def test_huffman_refuses_symbols_outside_the_alphabet():
    with pytest.raises(ValueError, match=r"symbols must lie in 0\.\.3"):
        Huffman.encode(np.array([0, 4]), alphabet=4)


@pytest.mark.parametrize("bits", [0, 17, 2.5, True])
def test_bits_outside_a_sane_range_are_refused(bits):
    with pytest.raises(ValueError, match=r"bits must be an int in 1\.\.16"):
        coding.kmeans(torch.randn(10), bits)


def test_kmeans_is_lossless_with_few_distinct_values():
    values = torch.tensor([0.5, -1.0, 0.5, 2.0, -1.0])
    codebook, codes = coding.kmeans(values, bits=2)
    assert codebook.tolist() == [-1.0, 0.5, 2.0] and torch.equal(codebook[codes], values)


def test_kmeans_error_is_bounded_and_better_than_its_linear_start():
    """Uniform values in [-1, 1]: every value sits at its nearest centroid, within one linear bin
    width (2 / 2^bits), and Lloyd's iterations never raise the mean squared error of the start."""
    values = torch.rand(4000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for bits in (2, 4):
        codebook, codes = coding.kmeans(values, bits)
        assert codebook.numel() == 2**bits and torch.all(codebook.diff() > 0)
        distance = (values[:, None] - codebook[None, :]).abs()
        assert torch.equal(distance.argmin(1), codes)
        error = (codebook[codes] - values).abs()
        assert error.max() <= 2 / 2**bits
        linear = torch.linspace(float(values.min()), float(values.max()), 2**bits)
        linear_mse = (values[:, None] - linear).abs().min(1).values.pow(2).mean()
        assert error.pow(2).mean() <= linear_mse


def test_a_truncated_or_corrupted_huffman_stream_is_refused():
    """Decoding never returns uninitialised memory: a stream that ends early or spells no code is named."""
    h = Huffman.encode(np.array([0, 1, 2, 3, 0, 0, 1, 2, 3, 3, 0, 1] * 20))
    with pytest.raises(ValueError, match=r"the Huffman stream ends after \d+ of 240 symbols"):
        Huffman(h.lengths, h.data[:3], h.count).decode()
    with pytest.raises(ValueError, match="ends after 0 of 240"):
        Huffman(h.lengths, b"", h.count).decode()
    with pytest.raises(ValueError, match="ends after 240 of 290"):
        Huffman(h.lengths, h.data, h.count + 50).decode()
    lone = Huffman.encode(np.array([5, 5, 5]))
    with pytest.raises(ValueError, match="no code"):
        Huffman(lone.lengths, b"\xff", 3).decode()


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Huffman.encode(np.array([0.5, 1.7, 2.9])), "Huffman symbols must be integers, got float64"),
    (lambda: huffman_lengths({0: 0.5, 1: 0.25}), "frequencies must be positive int counts"),
    (lambda: kmeans(torch.tensor([0.1, float("nan"), 0.3, 0.4, 0.5]), 1), "k-means values must be finite"),
    (lambda: kmeans(np.array([0.1, 0.2]), 1), "k-means takes a tensor of values, got ndarray"),
])
def test_coding_refuses_values_it_would_silently_change(call, message):
    with pytest.raises(ValueError, match=message):
        call()

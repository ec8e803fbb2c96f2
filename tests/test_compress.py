
import numpy as np
import pytest
import torch
from torch import nn

from coursekit import compress, models
from coursekit.core.masks import nonzero_density
from coursekit.core.train import fit
from coursekit.methods.compress import COO, CSR, Bitmask, DeepCompressed


def _four_by_four():
    """A 4×4 matrix with 3 nonzeros: the hand-computed byte counts below refer to it."""
    w = torch.zeros(4, 4)
    w[0, 1], w[2, 0], w[3, 3] = 1.5, -2.0, 0.25
    return w


def _sparse(shape, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=gen)
    return w * (torch.rand(shape, generator=gen) < density)


@pytest.mark.parametrize(("largest", "dtype"), [
    (0, np.uint8), (255, np.uint8), (256, np.uint16), (65_535, np.uint16),
    (65_536, np.uint32), (2**32 - 1, np.uint32), (2**32, np.uint64),
])
def test_index_dtype_is_the_smallest_that_holds_the_largest_index(largest, dtype):
    assert compress.index_dtype(largest) == np.dtype(dtype)


@pytest.mark.parametrize(("largest", "message"), [(-1, "never negative"), (2**64, "64 bits")])
def test_index_dtype_refuses_impossible_indices(largest, message):
    with pytest.raises(ValueError, match=message):
        compress.index_dtype(largest)


def test_byte_counts_of_a_hand_made_matrix():
    """By hand: CSR = indptr 5×1 B + indices 3×1 B + values 3×4 B = 20; bitmask 2 + 12; COO 3 + 3 + 12."""
    w = _four_by_four()
    csr = CSR.encode(w)
    assert csr.indptr.tolist() == [0, 1, 1, 2, 3] and csr.indices.tolist() == [1, 0, 3]
    assert csr.indptr.dtype == csr.indices.dtype == np.uint8
    assert compress.dense_bytes(w) == 64
    assert (csr.nbytes, Bitmask.encode(w).nbytes, COO.encode(w).nbytes) == (20, 14, 18)


def test_index_widths_follow_the_layer_size():
    w = torch.zeros(2, 300)
    w[0, 299] = w[1, 5] = 1.0
    csr, coo = CSR.encode(w), COO.encode(w)
    assert csr.indices.dtype == np.uint16 and csr.indptr.dtype == np.uint8  # 299 columns, 2 nonzeros
    assert [i.dtype for i in coo.indices] == [np.uint8, np.uint16]
    assert csr.nbytes == 3 + 2 * 2 + 2 * 4


@pytest.mark.parametrize("fmt", [Bitmask, CSR, COO])
@pytest.mark.parametrize("density", [0.02, 0.3, 1.0])
def test_lossless_formats_round_trip_exactly(fmt, density):
    w = _sparse((37, 53), density, seed=1)
    assert torch.equal(fmt.encode(w).decode(), w)


@pytest.mark.parametrize("fmt", [Bitmask, COO])
def test_formats_for_any_shape_round_trip_a_conv_weight(fmt):
    w = _sparse((8, 3, 3, 3), 0.2)
    assert torch.equal(fmt.encode(w).decode(), w)


def test_csr_converts_to_torch_sparse():
    w = _sparse((20, 30), 0.1)
    x = torch.randn(30, 4)
    torch.testing.assert_close(CSR.encode(w).to_torch() @ x, w @ x)


@pytest.mark.parametrize(("weight", "message"), [
    (torch.zeros(3, 4), "no nonzero entries.*collapsed layer"),
    (torch.ones(2, 3, 3), r"2-D matrices, got shape \(2, 3, 3\); reshape"),
])
def test_csr_refuses_empty_and_non_matrix_weights(weight, message):
    with pytest.raises(ValueError, match=message):
        CSR.encode(weight)


def test_relative_positions_split_long_gaps_with_skips():
    keep = np.zeros(20, bool)
    keep[[1, 9, 10, 19]] = True
    gaps = compress.relative_positions(keep, index_bits=2)  # skip symbol 3 = "3 zeros, no weight"
    assert gaps.tolist() == [1, 3, 3, 1, 0, 3, 3, 2]
    assert compress.absolute_positions(gaps, 2).tolist() == [1, 9, 10, 19]


def test_quantize_model_refuses_empty_layers_and_unnamed_widths():
    model = models.build("mlp", (1, 4, 4), 3, hidden=(5,))
    with pytest.raises(ValueError, match=r"bits gives no width for layer '3.weight'"):
        compress.quantize_model(model, bits={"1.weight": 4})
    with torch.no_grad():
        model[1].weight.zero_()
    with pytest.raises(ValueError, match=r"layer '1.weight' has no nonzero weights"):
        compress.quantize_model(model, bits=4)


def test_deep_compression_stage_bytes_by_hand():
    """w = [0, 1, 0, 0, 0, 0, 0, 2] with 1-bit codes and 2-bit gaps [1, 3, 2] (3 entries, 2 nonzeros):
    pruned ⌈(3·2 + 2·32)/8⌉ = 9; quantised ⌈(6 + 2)/8⌉ + codebook 8 = 9; Huffman: gaps with lengths
    (2, 1, 2) → 5 bits = 1 B + table 4, codes 2 bits = 1 B + table 2, codebook 8 → 16."""
    w = torch.tensor([0.0, 1.0, 0, 0, 0, 0, 0, 2.0])
    deep = DeepCompressed.encode(w, bits=1, index_bits=2)
    assert deep.stage_bytes() == {"dense": 32, "pruned": 9, "quantized": 9, "huffman": 16}
    assert torch.equal(deep.decode(), w) and deep.max_error == 0.0


def test_deep_compression_round_trip_is_exact_up_to_the_reported_error():
    w = _sparse((64, 3, 3, 3), 0.15, seed=2)
    deep = DeepCompressed.encode(w, bits=3, index_bits=4)
    out = deep.decode()
    assert out.shape == w.shape and torch.equal(out == 0, w == 0)  # every zero stays, none appears
    assert torch.unique(out[out != 0]).numel() <= 8
    assert (out - w).abs().max().item() == pytest.approx(deep.max_error)
    codebook, codes = compress.kmeans(w[w != 0], 3)
    assert torch.equal(out[w != 0], codebook[codes])


def test_storage_table_lists_every_format():
    table = compress.storage_table(_four_by_four(), bits=2, index_bits=2)
    assert table.loc["dense", "ratio"] == 1.0
    assert table.loc[["dense", "bitmask", "csr", "coo"], "bytes"].tolist() == [64, 14, 20, 18]
    assert (table.loc[["bitmask", "csr", "coo", "relative index"], "max_error"] == 0).all()
    conv = compress.storage_table(_sparse((16, 8, 3, 3), 0.1))
    assert conv.loc["csr", "bytes"] == CSR.encode(_sparse((16, 8, 3, 3), 0.1).reshape(16, -1)).nbytes
    assert conv.loc["k-means 5-bit + Huffman", "ratio"] > conv.loc["relative index", "ratio"] > 1


def test_pipeline_prune_retrain_quantise_huffman(digits):
    """Deep Compression on an MLP: the mask survives retraining and quantisation exactly, each layer
    ends with at most 2^bits distinct weights, and every stage shrinks the whole model."""
    model = models.build("mlp", digits.input_shape, digits.num_classes, hidden=(64,))
    mask = compress.magnitude_mask(model, density=0.2)
    fit(model, digits, epochs=1, lr=0.05, hooks=[mask.hook(model)], progress=False)
    errors = compress.quantize_model(model, bits=4)
    assert nonzero_density(model) == pytest.approx(mask.density)
    assert (errors["centroids"] <= 16).all() and (errors["max_error"] > 0).all()
    for name in mask:
        weight = dict(model.named_parameters())[name]
        assert torch.equal(weight != 0, mask[name]) and torch.unique(weight[weight != 0]).numel() <= 16
    table = compress.deep_compression(model, bits=4)
    total = table[table["layer"] == "total"].set_index("stage")
    assert list(total.index) == ["dense", "pruned", "quantized", "huffman"]
    layers = table[table["layer"] != "total"]
    assert (total["bytes"] == layers.groupby("stage")["bytes"].sum()[total.index]).all()
    assert total["ratio"].is_monotonic_increasing and total.loc["huffman", "ratio"] > 15


@pytest.mark.parametrize(("call", "message"), [
    (lambda: compress.Bitmask((2, 2), np.packbits(np.array([1, 0, 0, 1], bool)), np.array([1.0], np.float32)),
     "the bitmask keeps 2 positions but holds 1 values"),
    (lambda: compress.CSR((2, 2), np.array([0, 1]), np.array([0]), np.array([1.0], np.float32)),
     "needs 3 row pointers, got 2"),
    (lambda: compress.CSR((2, 2), np.array([0, 1, 2]), np.array([0]), np.array([1.0], np.float32)),
     "row pointers end at 2 but there are 1 column indices"),
    (lambda: compress.COO((2, 2), (np.array([0]),), np.array([1.0], np.float32)), "needs 2 index arrays"),
])
def test_codecs_refuse_parts_that_do_not_fit_together(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(("names", "message"), [
    ("1.weight", r"names must be a list of parameter names, e.g. \['1.weight'\]"),
    (["9.weight"], r"unknown layers \['9.weight'\]"),
    ([], "names is empty"),
])
def test_compressing_names_that_are_not_layers_is_refused(names, message):
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    for call in (compress.quantize_model, compress.deep_compression):
        with pytest.raises(ValueError, match=message):
            call(net, names=names)

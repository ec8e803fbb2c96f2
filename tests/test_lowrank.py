import pytest
import torch
from torch import nn

from coursekit import lowrank, models, structured


def _tiny():
    """conv 1→2 (3×3, pad 1) on 1×4×4, ReLU, 2×2 pool, Flatten (2·2·2 = 8), Linear 8 → 3."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8, 3))


def test_svd_at_full_rank_reproduces_linear_and_conv_layers():
    torch.manual_seed(0)
    for layer, x in [(nn.Linear(12, 5), torch.randn(4, 12)),
                     (nn.Conv2d(3, 6, 3, stride=2, padding=1), torch.randn(2, 3, 9, 9))]:
        full = min(layer.weight.shape[0], layer.weight[0].numel())
        pair = lowrank.factorize(layer, full)
        with torch.no_grad():
            torch.testing.assert_close(pair(x), layer(x), rtol=1e-5, atol=1e-5)
    assert pair[0].kernel_size == (3, 3) and pair[0].stride == (2, 2) and pair[1].kernel_size == (1, 1)


def test_truncated_svd_error_is_the_dropped_singular_values():
    """Eckart–Young: ‖W − B·C‖_F = √(Σ_{i>r} s_i²)."""
    w = torch.randn(20, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b, c = lowrank.svd_factors(w, 5)
    s = torch.linalg.svdvals(w)
    assert b.shape == (20, 5) and c.shape == (5, 30)
    assert torch.linalg.matrix_norm(w - b @ c).item() == pytest.approx(s[5:].pow(2).sum().sqrt().item())


def test_choose_rank_by_energy_and_by_parameters():
    w = torch.diag(torch.tensor([3.0, 2.0, 1.0]))  # s² = 9, 4, 1 of 14: 64 %, 93 %, 100 %
    assert [lowrank.choose_rank(w, energy=e) for e in (0.5, 0.9, 1.0)] == [1, 2, 3]
    assert lowrank.choose_rank(torch.randn(100, 50), param_fraction=0.5) == 16  # 16·150 ≤ 2500
    assert lowrank.choose_rank(torch.randn(100, 50), param_fraction=10.0) == 50
    assert lowrank.choose_rank(torch.randn(100, 50), rank_fraction=0.2) == 10
    assert lowrank.choose_rank(torch.randn(8, 1, 3, 3), rank_fraction=0.01) == 1  # conv: its 8×9 matrix


def test_rank_fraction_keeps_that_share_of_every_layer():
    net = models.build("vgg_bn", (3, 16, 16), 10)  # convs 16×27, 32×144, 64×288; Linear 10×64
    small = lowrank.low_rank(net, rank_fraction=0.25)
    assert [small[i][0].out_channels for i in (0, 4, 8)] == [4, 8, 16]
    assert small[13][0].out_features == 2  # round(0.25 · 10); 2·(64 + 10) = 148 < 640 weights


@pytest.mark.parametrize(("call", "message"), [
    (lambda: lowrank.svd_factors(torch.randn(3, 4), 4), r"rank must be an int in 1\.\.3"),
    (lambda: lowrank.svd_factors(torch.randn(3, 4), 0), r"1\.\.3"),
    (lambda: lowrank.svd_factors(torch.randn(2, 3, 3), 1), "2-D matrix.*reshape"),
    (lambda: lowrank.choose_rank(torch.randn(3, 4)), "exactly one"),
    (lambda: lowrank.choose_rank(torch.randn(3, 4), energy=1.5), r"\(0, 1\]"),
    (lambda: lowrank.low_rank(_tiny(), rank=2, energy=0.9), "exactly one"),
    (lambda: lowrank.low_rank(_tiny(), rank=1, layers=["1"]), "not Linear or conv"),
    (lambda: lowrank.choose_rank(torch.randn(3, 4), rank_fraction=0.0), r"rank_fraction must lie in \(0, 1\]"),
    (lambda: lowrank.low_rank(_tiny(), rank=3), r"rank 3 for layer '0': its 2×9 matrix has ranks 1\.\.2"),
    (lambda: lowrank.low_rank(_tiny(), rank={"4": 4}), r"layer '4': its 3×8 matrix has ranks 1\.\.3"),
])
def test_bad_low_rank_requests(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_low_rank_model_is_smaller_and_skips_layers_it_would_grow():
    net = models.build("vgg_bn", (3, 16, 16), 10)
    small = lowrank.low_rank(net, param_fraction=0.5)
    assert structured.count_parameters(small) < 0.55 * structured.count_parameters(net)
    assert small[8][0].out_channels == 26  # conv 32 → 64, 3×3: 26·(64 + 288) ≤ 0.5·64·288
    assert small[13][0].out_features == 4  # Linear 64 → 10: 4·(10 + 64) ≤ 0.5·640
    assert isinstance(lowrank.low_rank(net, rank={"13": 9})[13], nn.Linear)  # 9·74 > 640: kept
    assert isinstance(lowrank.low_rank(net, rank={"13": 9}, only_if_smaller=False)[13], nn.Sequential)
    full = lowrank.low_rank(net, energy=1.0, only_if_smaller=False).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(full(x), net.eval()(x), rtol=1e-4, atol=1e-5)


def test_layers_as_a_string_missing_ranks_and_transposed_convs_are_refused():
    seq = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    with pytest.raises(ValueError, match=r"layers must be a list of module names, e.g. \['12'\]"):
        lowrank.low_rank(seq, rank=1, layers="12")
    with pytest.raises(ValueError, match=r"rank gives no value for layers \['2'\]"):
        lowrank.low_rank(seq, rank={"0": 2}, layers=["0", "2"])
    with pytest.raises(ValueError, match="transposed convs"):
        lowrank.factorize(nn.ConvTranspose2d(4, 6, 3), 2)
    up = nn.Sequential(nn.ConvTranspose2d(4, 6, 3), nn.Flatten(), nn.Linear(6 * 9, 4))
    assert isinstance(lowrank.low_rank(up, rank_fraction=0.25)[0], nn.ConvTranspose2d)  # left as it is

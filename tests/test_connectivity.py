"""Layer-collapse diagnostics: path counts through masks, the collapse table, the last connected compression."""

import math

import pytest
import torch
from torch import nn

from coursekit import connectivity, models
from coursekit.core.masks import Mask


def test_paths_count_every_input_output_path_through_the_kept_weights():
    model = models.build("mlp", (3,), 2, seed=0, hidden=(4,))
    full = Mask.ones_like(model)
    assert connectivity.paths(model, full, (3,)) == 3 * 4 * 2
    cut = Mask({"1.weight": torch.ones(4, 3, dtype=torch.bool),
                "3.weight": torch.tensor([[True, False, False, False], [True, True, False, False]])})
    assert connectivity.paths(model, cut, (3,)) == 3 * (1 + 2)  # unit 0 reaches both outputs, unit 1 one
    empty = Mask({"1.weight": torch.zeros(4, 3, dtype=torch.bool), "3.weight": torch.ones(2, 4, dtype=torch.bool)})
    assert connectivity.paths(model, empty, (3,)) == 0  # biases do not count as paths


def test_paths_through_a_convnet_with_batchnorm():
    model = models.build("vgg_bn", (1, 8, 8), 3, seed=0, cfg=(2, "M", 2))
    full = Mask.ones_like(model)
    assert connectivity.paths(model, full, (1, 8, 8)) > 0
    first = next(iter(full))
    cut = Mask({n: (torch.zeros_like(t) if n == first else t) for n, t in full.items()})
    assert connectivity.paths(model, cut, (1, 8, 8)) == 0


def test_collapse_table_and_the_last_connected_compression():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    keep = {"0.weight": torch.ones(4, 3, dtype=torch.bool), "2.weight": torch.ones(2, 4, dtype=torch.bool)}
    masks = {1.0: Mask(keep), 2.0: Mask(keep | {"2.weight": torch.eye(2, 4, dtype=torch.bool)}),
             10.0: Mask(keep | {"0.weight": torch.zeros(4, 3, dtype=torch.bool)})}
    table = connectivity.collapse_table(model, masks, (3,))
    assert list(table.columns) == ["compression", "layer", "density", "paths", "collapsed"]
    assert table.groupby("compression")["collapsed"].first().to_dict() == {1.0: False, 2.0: False, 10.0: True}
    assert connectivity.max_compression(table) == 2.0
    assert connectivity.max_compression(table[table["compression"] < 5]) == math.inf


def test_a_mask_of_another_model_is_refused():
    model = nn.Sequential(nn.Linear(3, 4))
    with pytest.raises(ValueError, match="shape"):
        connectivity.paths(model, Mask({"0.weight": torch.ones(5, 3, dtype=torch.bool)}), (3,))

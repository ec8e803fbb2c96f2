import numpy as np
import pytest
import torch

from coursekit.core.masks import Mask
from coursekit.core.pruning import mask_from_scores


def _scores():
    gen = torch.Generator().manual_seed(0)
    return {"a": torch.rand(40, 30, generator=gen), "b": torch.rand(30, 10, generator=gen) * 0.5}


def test_global_keeps_the_largest_scores_everywhere():
    s = _scores()
    mask = mask_from_scores(s, 0.25)
    assert mask.kept == round(0.25 * 1500)
    kept = torch.cat([s[n][mask[n]] for n in s])
    dropped = torch.cat([s[n][~mask[n]] for n in s])
    assert kept.min() >= dropped.max()  # every survivor outranks every pruned weight
    assert mask.layer_densities()["b"] < mask.layer_densities()["a"]  # smaller scores, pruned harder


def test_layerwise_gives_every_layer_the_same_density():
    mask = mask_from_scores(_scores(), 0.1, "layerwise")
    assert mask.layer_densities() == {"a": pytest.approx(0.1), "b": pytest.approx(0.1)}


def test_budget_sets_each_layer():
    mask = mask_from_scores(_scores(), scope={"a": 0.5, "b": 0.2})
    assert mask.layer_densities() == {"a": pytest.approx(0.5), "b": pytest.approx(0.2)}


def test_iterating_only_removes_weights_and_compounds():
    """As in OpenLTH's tests: after two rounds of 20 % of the remaining, (1 - 0.2)^2 remain."""
    s = _scores()
    first = mask_from_scores(s, 0.8)
    flipped = {n: -v for n, v in s.items()}  # the new scores would prefer the pruned weights
    second = mask_from_scores(flipped, 0.64, previous=first)
    assert second.kept == round(0.64 * 1500)
    for n in s:
        assert not (second[n] & ~first[n]).any()  # nothing pruned comes back


def test_ties_are_broken_by_position():
    mask = mask_from_scores({"w": torch.ones(2, 3)}, 0.5)
    assert mask["w"].flatten().tolist() == [True, True, True, False, False, False]


def test_density_rounding_to_zero_keeps_one_weight_per_layer_when_layerwise():
    mask = mask_from_scores({"w": torch.arange(10.0), "v": torch.arange(3.0)}, 0.01, "layerwise")
    assert mask["w"].sum() == 1 and mask["v"].sum() == 1 and mask["w"][9]


def test_global_may_empty_a_layer():
    """Layer collapse (Tanaka et al. 2020) is possible with a global threshold, and shows."""
    mask = mask_from_scores({"big": torch.ones(10) * 5, "small": torch.ones(10)}, 0.5)
    assert mask.table().loc["small", "kept"] == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"density_of_all": 0}, r"density_of_all must lie in \(0, 1\]"),
    ({"density_of_all": 1.5}, r"\(0, 1\]"),
    ({"density_of_all": 0.5, "scope": "blockwise"}, "unknown scope 'blockwise'"),
    ({"scope": {"a": 0.5}}, r"missing \['b'\]"),
    ({"density_of_all": 0.5, "scope": {"a": 0.5, "b": 0.5}}, "not both"),
    ({"scope": {"a": 0.5, "b": 0.0}}, "budget density of 'b'"),
])
def test_bad_requests(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mask_from_scores(_scores(), **kwargs)


def test_cannot_grow_back():
    s = _scores()
    prev = mask_from_scores(s, 0.3)
    with pytest.raises(ValueError, match="only remove"):
        mask_from_scores(s, 0.5, previous=prev)
    with pytest.raises(ValueError, match="only remove"):
        mask_from_scores(s, 0.5, "layerwise", previous=Mask({n: m for n, m in prev.items()}))


def test_global_ties_are_shared_between_layers_not_given_to_the_first():
    """Equal scores everywhere: each layer keeps its share instead of the last layer losing all."""
    mask = mask_from_scores({"first": torch.ones(300), "out": torch.ones(10)}, 0.5)
    assert mask.table()["kept"].to_dict() == {"first": 150, "out": 5, "total": 155}
    partly = mask_from_scores({"a": torch.tensor([2.0, 1, 1, 1]), "b": torch.tensor([1.0, 1])}, 0.5)
    assert partly["a"].tolist() == [True, True, False, False] and partly["b"].tolist() == [True, False]


def test_nan_scores_are_refused_unless_already_pruned():
    scores = _scores()
    scores["b"][3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"NaN for weights still alive \(layer: count\) \{'b': 1\}"):
        mask_from_scores(scores, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        mask_from_scores(scores, 0.5, "layerwise")
    previous = Mask({"a": torch.ones(40, 30, dtype=torch.bool),
                     "b": torch.ones(30, 10, dtype=torch.bool).index_put_((torch.tensor(3), torch.tensor(4)),
                                                                          torch.tensor(False))})
    mask = mask_from_scores(scores, 0.5, previous=previous)
    assert not mask["b"][3, 4] and mask.kept == 750


@pytest.mark.parametrize(("scores", "kwargs", "message"), [
    ({"w": torch.rand(100)}, {"density_of_all": 0.001}, r"keeps none of the 100 weights; the smallest density that keeps one is 0\.01"),
    ({"w": torch.rand(10)}, {"density_of_all": True}, r"density_of_all must be a number in \(0, 1\], got bool True"),
    ({"w": torch.rand(10)}, {"density_of_all": torch.tensor(0.5)}, r"must be a number in \(0, 1\], got Tensor"),
    ({"w": torch.rand(10)}, {"density_of_all": 0.5, "scope": ["w"]}, r"scope must be one of \('global', 'layerwise'\)"),
    ({"w": torch.rand(10)}, {"density_of_all": float("nan")}, r"\(0, 1\], got nan"),
    ({"w": torch.empty(0)}, {"density_of_all": 0.5}, "non-empty real tensor"),
    ({"w": [0.1, 0.2]}, {"density_of_all": 0.5}, "must be a non-empty real tensor, got list"),
    ({"w": torch.rand(3)}, {"density_of_all": 0.5, "previous": Mask({"w": torch.ones(4, dtype=torch.bool)})},
     r"shape \(3,\) but the previous mask \(4,\)"),
])
def test_silently_wrong_inputs_are_refused(scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mask_from_scores(scores, **kwargs)


def test_scores_must_be_a_mapping_and_numpy_densities_are_numbers():
    with pytest.raises(ValueError, match=r"scores must be a \{parameter name: tensor\} mapping, got Tensor"):
        mask_from_scores(torch.rand(4), 0.5)
    assert mask_from_scores({"w": torch.arange(4.0)}, np.float32(0.5))["w"].tolist() == [False, False, True, True]

"""Every criterion of Zhou et al. 2019 on a hand-made example whose answer is known."""

import pytest
import torch

from coursekit import criteria
from coursekit.core.pruning import mask_from_scores

# values exact in binary, so ties are real ties
W_INIT = torch.tensor([1.0, -0.25, 0.5, -0.75])
W_FINAL = torch.tensor([0.25, -1.5, 0.75, 0.0])

# the two weights each criterion keeps at density 0.5 (ties go to the earlier weight)
EXPECTED_KEEP = {
    "large_final": [1, 2],                # |w_f| = .25 1.5 .75 0
    "small_final": [0, 3],
    "large_init": [0, 3],                 # |w_i| = 1 .25 .5 .75
    "small_init": [1, 2],
    "large_init_large_final": [0, 2],     # percentile ranks: |w_i| 1 .25 .5 .75, |w_f| .5 1 .75 .25
    "small_init_small_final": [2, 3],     # (min .5 .25 .5 .25; max 1 1 .75 .75)
    "magnitude_increase": [1, 2],         # |w_f| - |w_i| = -.75 1.25 .25 -.75
    "movement": [0, 1],                   # |w_f - w_i| = .75 1.25 .25 .75
}


@pytest.mark.parametrize("name", sorted(EXPECTED_KEEP))
def test_criterion_keeps_the_expected_weights(name):
    mask = mask_from_scores({"w": criteria.score(name, W_INIT, W_FINAL)}, 0.5)
    assert torch.nonzero(mask["w"]).flatten().tolist() == EXPECTED_KEEP[name]


def test_large_init_large_final_compares_percentiles_not_raw_magnitudes():
    """Zhou et al. threshold |w_i| and |w_f| each at the same percentile of its own distribution:
    with init weights 100x smaller than trained ones, a raw min(|w_i|, |w_f|) would be large_init."""
    w_init, w_final = torch.tensor([0.01, 0.02, 0.03, 0.04]), torch.tensor([4.0, 3.0, 2.0, 1.0])
    mask = mask_from_scores({"w": criteria.score("large_init_large_final", w_init, w_final)}, 0.5)
    assert mask["w"].tolist() == [False, True, True, False]  # in the top half of both rankings
    assert criteria.percentile_rank(torch.tensor([2.0, 2.0, 1.0])).tolist() == pytest.approx([2 / 3, 1, 1 / 3])


def test_random_criterion_follows_its_generator():
    a = criteria.score("random", W_INIT, W_FINAL, torch.Generator().manual_seed(1))
    b = criteria.score("random", W_INIT, W_FINAL, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == W_FINAL.shape


def test_every_registered_criterion_is_tested():
    assert set(criteria.CRITERIA) == set(EXPECTED_KEEP) | {"random"}


def test_scores_for_state_dicts_and_errors():
    out = criteria.scores("movement", {"w": W_INIT}, {"w": W_FINAL}, ["w"])
    assert torch.allclose(out["w"], (W_FINAL - W_INIT).abs())
    with pytest.raises(ValueError, match=r"no such criterion 'biggest'; known criteria: \['large_final'"):
        criteria.get("biggest")
    with pytest.raises(ValueError, match="missing"):
        criteria.scores("movement", {"w": W_INIT}, {}, ["w"])
    with pytest.raises(ValueError, match="differ in shape"):
        criteria.score("movement", W_INIT, W_FINAL[:3])


def test_every_criterion_on_a_two_layer_network_layerwise():
    """Two layers scored and pruned layer-wise at 50 %: each layer keeps its own known pair."""
    init = {"0.weight": W_INIT.reshape(2, 2), "1.weight": W_INIT.flip(0).reshape(2, 2)}
    final = {"0.weight": W_FINAL.reshape(2, 2), "1.weight": W_FINAL.flip(0).reshape(2, 2)}
    for name, keep in EXPECTED_KEEP.items():
        s = criteria.scores(name, init, final, ["0.weight", "1.weight"])
        mask = mask_from_scores(s, 0.5, "layerwise")
        assert torch.nonzero(mask["0.weight"].flatten()).flatten().tolist() == keep, name
        flipped = sorted(3 - i for i in keep)  # the same weights, stored in reverse order
        # ...except where a tie now goes to another weight (the earlier position wins)
        flipped = {"movement": [0, 2]}.get(name, flipped)
        assert torch.nonzero(mask["1.weight"].flatten()).flatten().tolist() == flipped, name


def test_a_registered_name_is_not_replaced_by_accident():
    with pytest.raises(ValueError, match="criterion 'large_final' is already registered"):
        criteria.register("large_final")
    assert criteria.get("large_final") is criteria.large_final

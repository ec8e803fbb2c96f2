"""Novelty search: the k-nearest-neighbour novelty and the adaptive archive."""

import pytest
import torch

from coursekit import novelty


def test_novelty_is_the_mean_distance_to_the_k_nearest_others():
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [10.0, 0.0]])
    scores = novelty.novelty_scores(b, k=2)
    assert scores.tolist() == pytest.approx([(1 + 2) / 2, (1 + 5 ** 0.5) / 2, (2 + 5 ** 0.5) / 2, (9 + 10) / 2])
    archive = torch.tensor([[10.0, 1.0]])
    assert novelty.novelty_scores(b, archive, k=1)[3] == pytest.approx(1.0)  # the archive is a neighbour
    assert novelty.novelty_scores(b, k=10).tolist() == pytest.approx(
        [(1 + 2 + 10) / 3, (1 + 5 ** 0.5 + 9) / 3, (2 + 5 ** 0.5 + 104 ** 0.5) / 3, (10 + 9 + 104 ** 0.5) / 3])
    assert novelty.novelty_scores(torch.zeros(1, 2)).tolist() == [0.0]


def test_the_archive_adds_novel_behaviours_and_adapts_its_threshold():
    archive = novelty.Archive(threshold=1.0, patience=2, too_many=1)
    b = torch.tensor([[0.0, 0.0], [5.0, 5.0], [9.0, 9.0]])
    assert archive.update(b, torch.tensor([0.5, 2.0, 3.0])) == 2 and len(archive) == 2
    assert archive.threshold == pytest.approx(1.2)  # more than too_many added: raised
    archive.update(b, torch.zeros(3))
    archive.update(b, torch.zeros(3))
    assert archive.threshold == pytest.approx(1.2 * 0.95)  # two idle generations: lowered
    assert archive.behaviours.tolist() == [[5.0, 5.0], [9.0, 9.0]]


@pytest.mark.parametrize("call, message", [
    (lambda: novelty.novelty_scores(torch.zeros(3, 2), k=0), "k .* must be a positive int"),
    (lambda: novelty.novelty_scores(torch.zeros(3)), "must be"),
    (lambda: novelty.novelty_scores(torch.zeros(3, 2), torch.zeros(2, 3)), "archive behaviours have 3"),
    (lambda: novelty.Archive(threshold=0), "must be positive"),
    (lambda: novelty.Archive(1.0).update(torch.zeros(3, 2), torch.zeros(2)), "one novelty per behaviour"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()

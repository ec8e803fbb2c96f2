"""Network slimming's channel scores and the Early-Bird rule on the masks they give.

Liu et al. 2017 ("Learning Efficient Convolutional Networks through Network Slimming")
add an L1 penalty ``λ Σ|γ|`` on the BatchNorm scales, so unimportant channels shrink
towards zero, and prune the channels with the smallest ``|γ|``. You et al. 2020
("Drawing Early-Bird Tickets", ICLR) take that channel mask after every epoch: once the
normalised Hamming distance between the current mask and each of the previous
``window`` masks is below ``ε``, the mask is the Early-Bird ticket
(:func:`early_bird_epoch`). Lecture 05's experiment is :mod:`coursekit.lectures.early_bird`.
"""

from __future__ import annotations

import itertools

import pandas as pd
import torch
from torch import nn

ChannelMasks = dict[str, torch.Tensor]  # conv layer name → bool per channel (True: kept)


def bn_scales(model: nn.Module) -> dict[str, torch.Tensor]:
    """``|γ|`` of the BatchNorm after each conv, keyed by the conv's name (network slimming's score)."""
    scales = {}
    for (name, layer), (_, after) in itertools.pairwise(model.named_children()):
        if isinstance(layer, nn.Conv2d) and isinstance(after, nn.BatchNorm2d) and after.affine:
            scales[name] = after.weight.detach().abs().clone()
    if not scales:
        raise ValueError(f"{type(model).__name__} has no Conv2d followed by an affine BatchNorm2d; Early-Bird "
                         "search ranks channels by BatchNorm scales (use models.build('vgg_bn', ...))")
    return scales


def slimming_penalty(strength: float):
    """``model ↦ strength · Σ|γ|`` over all BatchNorm scales (Liu et al. 2017 use 1e-4), for ``fit(penalty=)``."""
    if not strength >= 0:
        raise ValueError(f"slimming strength must be ≥ 0, got {strength!r}")

    def penalty(model: nn.Module) -> torch.Tensor:
        norms = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.affine]
        return strength * torch.cat(norms).abs().sum()

    return penalty


SCOPES = ("layerwise", "global")


def channel_masks(scales: dict[str, torch.Tensor], ratio: float, scope: str = "layerwise") -> ChannelMasks:
    """Prune the fraction ``ratio`` of channels with the smallest scales.

    ``scope="global"`` uses one threshold over all layers, as network slimming and You et
    al. do on VGG-16, where the wide late layers absorb most of the pruning. In a network
    as thin as ours a global threshold empties the narrow first layers instead (try it),
    so the default prunes the same fraction of every layer. Ties go to the earlier
    channel; every layer keeps at least its largest channel.

    >>> scales = {"0": torch.tensor([3.0, 1.0]), "3": torch.tensor([0.5, 2.0, 0.1, 4.0])}
    >>> channel_masks(scales, 0.5)
    {'0': tensor([ True, False]), '3': tensor([False,  True, False,  True])}
    >>> channel_masks(scales, 0.5, "global")["3"]
    tensor([False, False, False,  True])
    """
    check_pruning(ratio, scope)
    nan = sorted(name for name, s in scales.items() if torch.isnan(s).any())
    if nan:
        raise ValueError(f"BatchNorm scales of layers {nan} contain NaN (a network that diverged?)")
    if scope == "layerwise":
        return {name: _keep_top(s.cpu(), ratio) for name, s in scales.items()}
    flat = torch.cat([s.cpu() for s in scales.values()])
    keep = _keep_top(flat, ratio)
    masks, start = {}, 0
    for name, s in scales.items():
        m = keep[start:start + s.numel()].clone()
        if not m.any():
            m[s.cpu().argmax()] = True
        masks[name], start = m, start + s.numel()
    return masks


def check_pruning(ratio: float, scope: str) -> None:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise ValueError(f"pruning ratio must lie in [0, 1), got {ratio!r}")
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")


def _keep_top(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Bool mask keeping all but ``round(ratio · n)`` of ``scores``, the largest first (at least one)."""
    n_keep = max(1, scores.numel() - round(ratio * scores.numel()))
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    keep[torch.sort(scores, descending=True, stable=True).indices[:n_keep]] = True
    return keep


def mask_distance(a: ChannelMasks, b: ChannelMasks) -> float:
    """Normalised Hamming distance: the fraction of channels kept by one mask and pruned by the other."""
    if not a or a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("masks must cover the same layers (at least one) with the same widths")
    differ = sum(int((a[k] != b[k]).sum()) for k in a)
    return differ / sum(m.numel() for m in a.values())


def distance_matrix(masks: list[ChannelMasks]) -> pd.DataFrame:
    """Pairwise :func:`mask_distance` of the masks of epochs 1, 2, … (You et al. 2020, Fig. 2)."""
    n = len(masks)
    d = [[mask_distance(masks[i], masks[j]) for j in range(n)] for i in range(n)]
    epochs = pd.Index(range(1, n + 1), name="epoch")
    return pd.DataFrame(d, index=epochs, columns=epochs)


def early_bird_epoch(masks: list[ChannelMasks], epsilon: float = 0.1, window: int = 5) -> int | None:
    """The first epoch whose mask is within ``epsilon`` of each of the previous ``window`` masks.

    ``masks[i]`` is the mask after epoch ``i + 1``. Returns ``None`` when training
    ended before the masks settled.
    """
    if not 0 < epsilon <= 1:
        raise ValueError(f"epsilon must lie in (0, 1]: a distance of 0 may never be reached and no distance "
                         f"exceeds 1, got {epsilon!r}")
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    for i in range(window, len(masks)):
        if max(mask_distance(masks[i], masks[j]) for j in range(i - window, i)) < epsilon:
            return i + 1
    return None

"""Early-Bird tickets: the channel mask settles in the first epochs, so draw it there.

You et al. 2020 ("Drawing Early-Bird Tickets", ICLR) train with network slimming
(Liu et al. 2017: an L1 penalty ``λ Σ|γ|`` on the BatchNorm scales, so unimportant
channels shrink towards zero) and, after every epoch, take the channel mask that
prunes the fraction ``p`` of channels with the smallest ``|γ|`` (one global
threshold). The normalised Hamming distance between successive masks drops fast:
once the largest distance between the current mask and the previous ``window``
masks is below ``ε``, the mask is the Early-Bird (EB) ticket. Pruning it then and
retraining costs a fraction of training the dense network to the end first.

:func:`search` trains once and keeps the scales and weights of every epoch, so the
EB point for any ``p``, ``ε`` (:func:`early_bird_epoch`) is found without retraining;
:func:`compare_tickets` retrains the EB ticket and the ticket drawn at the end.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from coursekit import models, runtime, structured
from coursekit.claims import Claim
from coursekit.data import Dataset
from coursekit.train import SGDSettings, fit

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
    _check_pruning(ratio, scope)
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


def _check_pruning(ratio: float, scope: str) -> None:
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


@dataclass(frozen=True)
class EarlyBirdSettings(SGDSettings):
    """You et al. 2020's recipe (SGD, slimming, p = 50 %, ε = 0.1, window 5), scaled down.

    Training here has 500 (``ci``) or 6 000 (``cpu``) steps instead of 60 000, so the
    slimming strength is 2e-3 or 1e-3 instead of 1e-4 and the window 3 epochs (16 or 20
    in all); at ``ci`` ε = 0.15, since with 56 channels one channel changing sides moves
    the distance by 0.018. Retraining runs long enough for the annealed learning rate
    to settle both tickets (12 epochs: at 8 the final accuracies still jumped by up to
    15 points between runs).
    """

    epochs: int = 16
    lr_decay: float = 0.75
    slimming: float = 2e-3
    ratio: float = 0.5
    scope: str = "layerwise"
    epsilon: float = 0.15
    window: int = 3
    retrain_epochs: int = 12
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_pruning(self.ratio, self.scope)
        early_bird_epoch([], self.epsilon, self.window)  # validates both
        slimming_penalty(self.slimming)
        if self.retrain_epochs < 1:
            raise ValueError(f"retrain_epochs must be >= 1, got {self.retrain_epochs}")


@dataclass
class Search:
    """One slimming run: the BatchNorm scales and weights after each epoch, and its history."""

    scales: list[dict[str, torch.Tensor]]
    states: list[dict[str, torch.Tensor]]
    history: pd.DataFrame
    model: nn.Module

    def masks(self, ratio: float, scope: str = "layerwise") -> list[ChannelMasks]:
        """The channel mask of every epoch for pruning ratio ``ratio`` (see :func:`channel_masks`)."""
        return [channel_masks(s, ratio, scope) for s in self.scales]

    def network_at(self, epoch: int) -> nn.Module:
        """A copy of the network as it was after ``epoch`` (1-based)."""
        if not 1 <= epoch <= len(self.states):
            raise ValueError(f"epoch must be between 1 and {len(self.states)}, got {epoch!r}")
        net = copy.deepcopy(self.model)
        net.load_state_dict(self.states[epoch - 1])
        return net


def search(settings: EarlyBirdSettings, data: Dataset, progress: bool = True) -> Search:
    """Train the dense network with network slimming, recording scales and weights every epoch."""
    model = models.build(settings.model, data.input_shape, data.num_classes, seed=settings.seed,
                         device=data.device, width=settings.width)
    bn_scales(model)  # fail before training if the network has no BatchNorm scales
    scales, states = [], []

    def record(ctx) -> None:
        if ctx.end_of_epoch:
            scales.append(bn_scales(ctx.model))
            states.append({k: v.detach().clone() for k, v in ctx.model.state_dict().items()})

    with runtime.one_thread(data.device):  # a small network: a second CPU thread only adds waiting
        result = fit(model, data, **settings.fit_kwargs(), seed=settings.seed,
                     penalty=slimming_penalty(settings.slimming), hooks=[record], eval_test=True,
                     progress=progress, desc="slimming search")
    return Search(scales, states, result.history, model)


def retrain_ticket(settings: EarlyBirdSettings, data: Dataset, found: Search, epoch: int,
                   progress: bool = True) -> tuple[nn.Module, pd.DataFrame]:
    """Prune the channels of ``epoch``'s mask from that epoch's weights (surgery), then retrain.

    The pruned network is physically smaller (:func:`coursekit.structured.remove_filters`),
    so retraining it costs fewer FLOPs. Returns the retrained network and its history.
    """
    masks = channel_masks(found.scales[epoch - 1], settings.ratio, settings.scope)
    kept = {name: m.nonzero().squeeze(1) for name, m in masks.items()}
    ticket = structured.remove_filters(found.network_at(epoch), kept)
    with runtime.one_thread(data.device):
        result = fit(ticket, data, **settings.fit_kwargs() | {"epochs": settings.retrain_epochs},
                     seed=settings.seed, eval_test=True, progress=progress,
                     desc=f"retrain ticket of epoch {epoch}")
    return ticket, result.history


FINAL_EPOCHS = 3


def final_accuracy(history: pd.DataFrame) -> float:
    """Test accuracy at the end of training, averaged over the last 3 epochs.

    Small BatchNorm nets jitter from epoch to epoch; the average smooths that. It is a
    steadier read-out than the test accuracy at the best validation epoch, which on
    500 validation examples picks an epoch partly by chance (measured at ``ci``: the
    EB-minus-late difference had 1.5× the spread, and a bias towards the longer-trained
    late ticket).
    """
    return float(history["test_acc"].iloc[-FINAL_EPOCHS:].mean())


def compare_tickets(settings: EarlyBirdSettings, data: Dataset,
                    progress: bool = True) -> tuple[pd.DataFrame, Search]:
    """Dense vs the Early-Bird ticket vs the ticket drawn after full training (You et al. 2020, Tab. 1).

    Returns one row per network: the epoch its mask was drawn, ``test_acc`` at the end
    of training (:func:`final_accuracy`), ``params``, ``flops`` (multiply–accumulates per example) and ``cost``: training
    FLOPs in units of one dense epoch (search epochs, plus retraining epochs scaled by
    the ticket's FLOPs). If the masks never settle, the EB ticket is drawn at the end.
    Also returns the :class:`Search`, to read it with other ratios and ε.
    """
    found = search(settings, data, progress)
    eb = early_bird_epoch(found.masks(settings.ratio, settings.scope), settings.epsilon, settings.window) or settings.epochs
    dense_flops = structured.count_flops(found.model, data.input_shape)
    rows = [{"ticket": "dense", "drawn_at": None, "test_acc": final_accuracy(found.history),
             "params": structured.count_parameters(found.model), "flops": dense_flops,
             "cost": float(settings.epochs)}]
    for name, epoch in tqdm([("early-bird", eb), ("late", settings.epochs)], desc="retraining tickets",
                            disable=not progress, leave=False):
        ticket, history = retrain_ticket(settings, data, found, epoch, progress=False)
        flops = structured.count_flops(ticket, data.input_shape)
        rows.append({"ticket": name, "drawn_at": epoch, "test_acc": final_accuracy(history),
                     "params": structured.count_parameters(ticket), "flops": flops,
                     "cost": epoch + settings.retrain_epochs * flops / dense_flops})
    return pd.DataFrame(rows), found


def headline(tickets: pd.DataFrame, settings: EarlyBirdSettings) -> list[Claim]:
    """Lecture 05's checks of a :func:`compare_tickets` table (You et al. 2020's claims, weak form).

    The EB mask settles in the first half of training; its retrained ticket is within
    5 points of the late ticket's accuracy, cheaper to obtain, and smaller than dense.
    """
    rows = tickets.set_index("ticket")
    eb, late, dense = rows.loc["early-bird"], rows.loc["late"], rows.loc["dense"]
    return [Claim("EB ticket drawn in the first half (epoch)", eb["drawn_at"], "<=", settings.epochs / 2),
            Claim("EB ticket accuracy minus the late ticket's", eb["test_acc"] - late["test_acc"], ">", -0.05),
            Claim("EB ticket's cost over the late ticket's", eb["cost"] / late["cost"], "<", 1.0),
            Claim("EB ticket's FLOPs over the dense network's", eb["flops"] / dense["flops"], "<", 1.0)]


PRESETS = {  # lectures/05_early_bird.ipynb
    "ci": EarlyBirdSettings(),
    "cpu": EarlyBirdSettings(width=1.0, epochs=20, lr_decay=0.85, slimming=1e-3, epsilon=0.1, retrain_epochs=12),
    "gpu": EarlyBirdSettings(width=2.0, epochs=40, lr_decay=0.92, slimming=1e-4, epsilon=0.1, window=5,
                             retrain_epochs=20),
}

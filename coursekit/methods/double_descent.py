"""Sparse double descent (He et al. 2022, "Sparse Double Descent: Where Network Pruning Aggravates Overfitting").

Train a dense network on labels of which a fixed fraction is wrong, prune it to many
densities, retrain every sparse network, and read the test accuracy against sparsity.
With label noise the dense network memorises the wrong labels; as pruning takes capacity
away, the memorising goes first and test accuracy *rises* far above the dense network's
(the "sparse regime") before the network becomes too small to learn the task and collapses.
He et al. also see a first descent (a "critical regime" where the network just manages to
interpolate) between the dense network and that rise; how deep it is depends on the model,
the noise and the training budget.

:func:`sweep` prunes one-shot by global weight magnitude from the trained dense network and
retrains each density from the initial weights (lottery-ticket rewinding, He et al.'s main
protocol) or from the trained weights (``start="trained"``: fine-tuning). All densities of a
noise level share the architecture, so they train together as one batched model
(:func:`coursekit.core.batched.fit_batched`); ``batched=False`` trains them one at a time
(the same results, for :mod:`benchmarks.double_descent`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from coursekit.core import batched as batched_models
from coursekit.core import masks, models, pruning, train
from coursekit.core.data import Dataset
from coursekit.core.progress import tqdm
from coursekit.core.train import TrainSettings
from coursekit.methods import rewind

STARTS = ("init", "trained")


@dataclass(frozen=True)
class SweepSettings(TrainSettings):
    """A sparsity sweep: the model (``model``, an MLP's ``hidden`` widths), its training (every density trains as
    long as the dense network), the ``densities`` to prune to (1 is the dense network retrained), the label
    ``noise`` fractions, and where the survivors restart (``start``: ``"init"`` or ``"trained"``)."""

    model: str = "mlp"
    hidden: tuple[int, ...] = (128, 128)
    epochs: int = 100
    lr: float = 2e-3
    batch_size: int = 64
    densities: tuple[float, ...] = (1.0, 0.5, 0.25, 0.12, 0.06, 0.03, 0.015, 0.008, 0.004)
    noise: tuple[float, ...] = (0.0, 0.2, 0.4)
    start: str = "init"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model != "mlp":
            raise ValueError(f"the sweep trains an MLP (model='mlp', widths in hidden), got model={self.model!r}")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive layer widths, got {self.hidden!r}")
        if not self.densities or any(not 0 < d <= 1 for d in self.densities) or len(set(self.densities)) != len(
                self.densities):
            raise ValueError(f"densities must be distinct fractions in (0, 1], got {self.densities!r}")
        if not self.noise or any(not 0 <= f < 1 for f in self.noise):
            raise ValueError(f"noise fractions must lie in [0, 1), got {self.noise!r}")
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")


def _network(settings: SweepSettings, data: Dataset, seed: int) -> torch.nn.Module:
    return models.build("mlp", data.input_shape, data.num_classes, seed=seed, hidden=settings.hidden)


def _accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example correctness (bool) of ``net`` on ``(x, y)``."""
    net.eval()
    with torch.no_grad():
        return net(x).argmax(1) == y


def sweep(settings: SweepSettings, data: Dataset, seed: int = 0, batched: bool = True,
          progress: bool = True) -> pd.DataFrame:
    """Test accuracy against density for every noise level: one row per (noise, density).

    Columns: ``noise``, ``density`` (of the prunable weights), ``sparsity`` (1 − density),
    ``weights`` (left), ``test_acc`` (clean test labels), ``train_acc`` (on the labels it
    was trained on, noisy ones included), ``memorised`` (the share of the corrupted training
    examples predicted with their *wrong* label) and ``clean_fit`` (the share of the other
    training examples predicted correctly). ``seed`` draws the network, the minibatch order
    and which labels are corrupted.
    """
    rows = []
    for noise in tqdm(settings.noise, desc="noise levels", disable=not progress):
        noisy = data.with_label_noise(noise, seed)
        corrupted = noisy.y_train != data.y_train
        dense = _network(settings, data, seed)
        init = rewind.snapshot(dense)
        train.fit(dense, noisy, seed=seed, progress=False, **settings.fit_kwargs())
        trained = rewind.snapshot(dense)
        scores = {n: p.detach().abs() for n, p in masks.prunable_parameters(dense).items()}
        found = [pruning.mask_from_scores(scores, d) for d in settings.densities]
        nets = []
        for mask in found:
            net = _network(settings, data, seed)
            with torch.no_grad():
                rewind.reset(net, mask, "rewind", init, rewind=init if settings.start == "init" else trained)
            nets.append(net)
        if batched:
            batched_models.fit_batched(nets, noisy, [seed] * len(nets), masks=found, progress=False,
                                       **settings.fit_kwargs())
        else:
            for net, mask in zip(nets, found, strict=True):
                train.fit(net, noisy, seed=seed, hooks=[mask.hook(net)], progress=False, **settings.fit_kwargs())
        for density, mask, net in zip(settings.densities, found, nets, strict=True):
            fits = _accuracy(net, noisy.x_train, noisy.y_train)
            rows.append({"noise": noise, "density": density, "sparsity": 1 - density, "weights": mask.kept,
                         "test_acc": _accuracy(net, data.x_test, data.y_test).float().mean().item(),
                         "train_acc": fits.float().mean().item(),
                         "memorised": fits[corrupted].float().mean().item() if corrupted.any() else float("nan"),
                         "clean_fit": fits[~corrupted].float().mean().item()})
    return pd.DataFrame(rows)

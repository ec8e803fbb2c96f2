"""The index notebook's first experiment: LeNet-300-100 trained on Fashion-MNIST.

LeNet-300-100 (LeCun et al. 1998) is the fully connected network of the Lottery
Ticket paper (Frankle & Carbin 2019); every later lecture prunes it, so the
course starts by training it densely and looking at its learning curves.
"""

from __future__ import annotations

from dataclasses import dataclass

from coursekit.core import models
from coursekit.core.data import Dataset
from coursekit.core.runtime import check_fields
from coursekit.core.train import FitResult, fit


@dataclass(frozen=True)
class IntroSettings:
    """The knobs of ``lectures/00_index.ipynb`` (its ``parameters`` cell)."""

    epochs: int
    lr: float = 0.1
    batch_size: int = 60
    width: float = 1.0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0 or not self.width > 0:
            raise ValueError(f"IntroSettings needs epochs >= 1, batch_size >= 1, lr > 0 and width > 0; got {self}")


PRESETS = {
    "ci": IntroSettings(epochs=3),
    "cpu": IntroSettings(epochs=10),
    "gpu": IntroSettings(epochs=20),
}


def train_lenet(data: Dataset, settings: IntroSettings, seed: int = 0,
                progress: bool = True) -> FitResult:
    """Train LeNet-300-100 (widths × ``settings.width``) with plain SGD; test accuracy recorded.

    Evaluates four times per epoch, so even a short run draws a readable curve.
    """
    steps_per_epoch = -(-data.x_train.shape[0] // settings.batch_size)
    model = models.build("lenet300_100", data.input_shape, data.num_classes, seed=seed,
                         device=data.device, width=settings.width)
    return fit(model, data, epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
               seed=seed, eval_test=True, eval_every=max(1, steps_per_epoch // 4), progress=progress,
               desc=f"LeNet-300-100 (lr={settings.lr:g}, width={settings.width:g})")

"""What a training hook is: a callable run after every optimiser step with a :class:`StepContext`.

Its own module so that the mask layer (:mod:`coursekit.core.masks`), the schedules and
the training loop (:mod:`coursekit.core.train`) share the protocol without the masks
depending on the training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StepContext:
    """What a hook sees after each optimiser step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    step: int
    epoch: int
    loss: torch.Tensor
    end_of_epoch: bool = False


Hook = Callable[[StepContext], None]

"""What a training hook is: a callable run after every optimiser step with a :class:`StepContext`.

Its own module so that the mask layer (:mod:`coursekit.core.masks`), the schedules and
the training loop (:mod:`coursekit.core.train`) share the protocol without the masks
depending on the training loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

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


class Topology(Protocol):
    """A mask that training changes (SET, RigL: :mod:`coursekit.methods.dynamic_sparse`).

    As a ``fit`` hook it is called after every step; :func:`coursekit.core.batched.fit_batched`
    drives one per member through ``due`` and ``change`` instead, on the member's weights.
    """

    keep: Mapping[str, torch.Tensor]  # parameter name → bool tensor, the current topology

    def due(self, step: int, end_of_epoch: bool) -> bool:
        """Whether the topology changes after this step."""

    def change(self, grads: Mapping[str, torch.Tensor | None], optimizer: torch.optim.Optimizer | None,
               step: int) -> dict[str, int]:
        """Change it now (weights and ``keep``) from the dense gradients; connections changed per layer."""

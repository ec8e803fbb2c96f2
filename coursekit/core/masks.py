"""Masks: which weights of a network are kept (``True``) and which are pruned (``False``).

A :class:`Mask` maps parameter names to bool tensors of the parameters' shapes.
*Density* is the fraction of weights kept, *sparsity* the fraction pruned
(``sparsity = 1 - density``); both are fractions **of all** prunable weights unless
an argument's name says ``of_remaining``.

Keeping pruned weights at exactly zero while training: :meth:`Mask.hook` re-zeroes
them after every optimiser step with one fused ``torch._foreach_mul_`` call, and
:meth:`Mask.apply` zeroes them before training starts, so every forward pass and
the final model see exact zeros whatever SGD momentum, Adam moments or AdamW's
weight decay hold for those entries. Masking the gradients as well would keep the
optimiser state clean, but changes nothing the network computes and costs another
pass: ``benchmarks/masked_step.py`` (``docs/performance.md``) measured, for
LeNet-300-100 at 80 % sparsity on 2 CPU cores with fused optimisers, re-zeroing
alone at 1.07–1.10× the dense step and gradient masking on top at 1.09–1.16×
(1.6–1.8× with PyTorch's unfused CPU Adam). So the course re-zeroes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from coursekit.core import files
from coursekit.core.hooks import Hook, StepContext

PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_parameters(model: nn.Module,
                        types: tuple[type[nn.Module], ...] = PRUNABLE_TYPES) -> dict[str, nn.Parameter]:
    """The parameters pruning acts on: by default the weights of linear and conv layers.

    Biases and normalisation parameters are few and matter a lot, so they are kept
    (as in Frankle & Carbin 2019 and Han et al. 2015).
    """
    found = {}
    for module_name, module in model.named_modules():
        if isinstance(module, types) and getattr(module, "weight", None) is not None:
            found[f"{module_name}.weight" if module_name else "weight"] = module.weight
    return found


def _names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        raise ValueError(f"names must be a list of parameter names, e.g. [{names!r}], got the string {names!r}")
    return list(names)


def nonzero_density(model: nn.Module, names: Iterable[str] | None = None) -> float:
    """Fraction of the entries of ``names`` (default: prunable weights) that are not zero.

    Measures what the network holds, whatever any mask says: after masked training it
    equals the mask's density exactly.
    """
    params = dict(model.named_parameters())
    names = _names(names) if names is not None else list(prunable_parameters(model))
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; the model has {list(params)}")
    total = sum(params[n].numel() for n in names)
    if not names:
        kinds = ", ".join(t.__name__ for t in PRUNABLE_TYPES)
        raise ValueError(f"no weights to measure: the model has no prunable layer ({kinds}); name the "
                         "parameters to measure with names=")
    if total == 0:
        raise ValueError(f"parameters {names} hold no entries")
    return sum(int(torch.count_nonzero(params[n])) for n in names) / total


class Mask(Mapping[str, torch.Tensor]):
    """Parameter name → bool tensor of that parameter's shape (``True`` = kept).

    Created with ``model=``, it is checked against the model: every name must be one
    of its parameters and every tensor must have that parameter's shape.

    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> m = Mask.ones_like(net)
    >>> sorted(m), m.density
    (['0.weight', '2.weight'], 1.0)
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], model: nn.Module | None = None) -> None:
        if not tensors:
            raise ValueError("a Mask needs at least one tensor")
        if not isinstance(tensors, Mapping):
            raise ValueError(f"a Mask is made from a {{parameter name: bool tensor}} mapping, got "
                             f"{type(tensors).__name__}")
        for name, t in tensors.items():
            if not isinstance(t, torch.Tensor) or t.dtype != torch.bool:
                kind = t.dtype if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"mask entry {name!r} must be a bool tensor, got {kind}")
            if t.numel() == 0:
                raise ValueError(f"mask entry {name!r} is empty (shape {tuple(t.shape)}); a mask covers weights")
        self._tensors = dict(tensors)
        if model is not None:
            self.check(model)

    # -- Mapping ---------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, density {self.density:.4f})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Mask) and self.keys() == other.keys()
                and all(torch.equal(self[k], other[k].to(self[k].device)) for k in self))

    __hash__ = None  # mutable tensors inside

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def ones_like(cls, model: nn.Module, names: Iterable[str] | None = None) -> Mask:
        """Keep everything: a mask over ``names`` (default: :func:`prunable_parameters`)."""
        params = dict(model.named_parameters())
        names = _names(names) if names is not None else list(prunable_parameters(model))
        unknown = [n for n in names if n not in params]
        if unknown:
            raise ValueError(f"unknown parameters {unknown}; the model has {list(params)}")
        return cls({n: torch.ones_like(params[n], dtype=torch.bool) for n in names}, model)

    def check(self, model: nn.Module) -> None:
        """Raise ``ValueError`` unless every entry names a parameter of ``model`` with its shape."""
        params = dict(model.named_parameters())
        unknown = [n for n in self if n not in params]
        reparametrised = [n for n in unknown if f"{n}_orig" in params]
        if reparametrised:
            raise ValueError(f"{reparametrised} are pruned with torch.nn.utils.prune (the model holds "
                             f"{reparametrised[0]}_orig and a {reparametrised[0].rpartition('.')[2]}_mask buffer), "
                             "so they are no longer parameters; torch's masks already zero them. Read the mask "
                             "with Mask.from_torch_prune(model), or call torch.nn.utils.prune.remove on those "
                             "modules first to use this Mask")
        if unknown:
            raise ValueError(f"mask names {unknown} are not parameters of this model (a mask for "
                             f"another architecture?); the model has {list(params)}")
        wrong = {n: (tuple(self[n].shape), tuple(params[n].shape))
                 for n in self if self[n].shape != params[n].shape}
        if wrong:
            raise ValueError(f"mask shapes differ from the parameters' (a mask for another architecture?); "
                             f"(mask, parameter) shapes: {wrong}")

    # -- measuring -------------------------------------------------------------------------
    @property
    def kept(self) -> int:
        """Number of weights kept."""
        return int(sum(int(t.sum()) for t in self.values()))

    @property
    def size(self) -> int:
        """Number of weights the mask covers."""
        return sum(t.numel() for t in self.values())

    @property
    def density(self) -> float:
        """Fraction of all masked weights that are kept."""
        return self.kept / self.size

    @property
    def sparsity(self) -> float:
        """Fraction of all masked weights that are pruned (``1 - density``)."""
        return 1.0 - self.density

    def table(self) -> pd.DataFrame:
        """Per layer: size, kept, density; the last row (``total``) is the global density."""
        rows = [{"layer": n, "size": t.numel(), "kept": int(t.sum())} for n, t in self.items()]
        rows.append({"layer": "total", "size": self.size, "kept": self.kept})
        table = pd.DataFrame(rows).set_index("layer")
        table["density"] = table["kept"] / table["size"]
        return table

    def layer_densities(self) -> dict[str, float]:
        """Layer name → fraction of that layer's weights kept."""
        return {n: float(t.float().mean()) for n, t in self.items()}

    # -- using -----------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> Mask:
        return Mask({n: t.to(device) for n, t in self.items()})

    def __and__(self, other: Mask) -> Mask:
        if not isinstance(other, Mask):
            return NotImplemented
        if self.keys() != other.keys():
            raise ValueError(f"masks cover different parameters: {sorted(self)} vs {sorted(other)}")
        shapes = {n: (tuple(self[n].shape), tuple(other[n].shape)) for n in self if self[n].shape != other[n].shape}
        if shapes:
            raise ValueError(f"masks differ in shape (this, other): {shapes}")
        return Mask({n: self[n] & other[n].to(self[n].device) for n in self})

    @torch.no_grad()
    def apply(self, model: nn.Module) -> nn.Module:
        """Zero the pruned weights of ``model`` in place; returns the model.

        Zeroing multiplies by 0, so a pruned negative weight becomes ``-0.0``: equal to
        ``0.0`` in every comparison, count and product, but with its sign bit set
        (``torch.signbit``) and different bytes in a saved file.
        """
        self.check(model)
        params = dict(model.named_parameters())
        for name, keep in self.items():
            params[name].mul_(keep.to(params[name].device))
        return model

    def hook(self, model: nn.Module) -> Hook:
        """A :func:`coursekit.core.train.fit` hook that re-zeroes pruned weights after every step.

        Also zeroes them once now, so the first forward pass is masked too. ``fit`` runs
        hooks that mask weights (``hook.masks_weights``) before all others, whatever the
        order they were given in, so every other hook sees the masked weights. Pruned
        entries are ``±0.0`` (see :meth:`apply`).
        """
        self.apply(model)
        params = dict(model.named_parameters())
        targets = [params[n] for n in self]
        factors = [self[n].to(device=params[n].device, dtype=params[n].dtype) for n in self]

        @torch.no_grad()
        def rezero(ctx: StepContext | None = None) -> None:
            torch._foreach_mul_(targets, factors)

        rezero.masks_weights = True
        return rezero

    # -- storing ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the mask to ``path`` (a ``torch.save`` file, written atomically)."""
        return files.save_torch({n: t.cpu() for n, t in self.items()}, path)

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None) -> Mask:
        """Read a mask written by :meth:`save`; with ``model``, check it fits and move it there."""
        tensors = files.load_torch(path, weights_only=True)
        if not isinstance(tensors, Mapping):
            raise ValueError(f"{path} holds a {type(tensors).__name__}, not a mask (a {{name: bool tensor}} dict "
                             "written by Mask.save)")
        mask = cls(tensors)
        if model is not None:
            mask.check(model)
            mask = mask.to(next(model.parameters()).device)
        return mask

    # -- torch.nn.utils.prune --------------------------------------------------------------
    def to_torch_prune(self, model: nn.Module) -> nn.Module:
        """Install the mask as ``torch.nn.utils.prune`` ``weight_mask`` buffers (a custom mask)."""
        self.check(model)
        modules = dict(model.named_modules())
        for name, keep in self.items():
            module_name, _, param = name.rpartition(".")
            torch_prune.custom_from_mask(modules[module_name], param, keep)
        return model

    @classmethod
    def from_torch_prune(cls, model: nn.Module) -> Mask:
        """The mask of a model pruned with ``torch.nn.utils.prune`` (its ``*_mask`` buffers)."""
        tensors = {}
        for module_name, module in model.named_modules():
            for buffer_name, buffer in module.named_buffers(recurse=False):
                if buffer_name.endswith("_mask"):
                    param = buffer_name[: -len("_mask")]
                    tensors[f"{module_name}.{param}" if module_name else param] = buffer.bool()
        if not tensors:
            raise ValueError("the model has no torch.nn.utils.prune masks (no '*_mask' buffers)")
        return cls(tensors)

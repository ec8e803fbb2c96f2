"""The course's networks, each built from a seed and placed on a device by the caller.

=================  ==========================================================
name               network
=================  ==========================================================
``lenet300_100``   LeNet-300-100, the fully connected net of LeCun et al. 1998
                   and of the Lottery Ticket paper (Frankle & Carbin 2019)
``conv2``          Conv-2 of Frankle & Carbin 2019 (64, 64, pool; FC 256, 256)
``conv4``          Conv-4 (64, 64, pool, 128, 128, pool; FC 256, 256)
``cnn1d``          the 1-D CNN of MNIST-1D (Greydanus 2020): three strided convs
``mlp``            a small multilayer perceptron with chosen widths and activation
``vgg_bn``         a small VGG with BatchNorm (conv-BN-ReLU, max-pools, global average
                   pool, Linear), the network-slimming / Early-Bird family
=================  ==========================================================

``build(name, input_shape, num_classes, seed=...)`` returns the model on the CPU;
``.to(device)`` it (or pass ``device=``). Widths scale with ``width`` so a widget
can shrink or grow a network without a new class.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from coursekit.core.runtime import get_device

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _positive_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x > 0


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {tuple(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _scaled(width: float, *channels: int) -> list[int]:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width < math.inf:
        raise ValueError(f"width must be a positive finite number, got {width!r}")
    return [max(1, round(c * width)) for c in channels]


def mlp(input_shape: Sequence[int], num_classes: int, hidden: Sequence[int] = (100,),
        activation: str = "relu") -> nn.Sequential:
    """A multilayer perceptron: Flatten, then Linear + activation per hidden width, then Linear."""
    if isinstance(hidden, (int, str)) or not all(_positive_int(h) for h in hidden):
        raise ValueError(f"hidden must be a tuple of positive layer widths, e.g. (100,), got {hidden!r}")
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(fan_in, h), _activation(activation)]
        fan_in = h
    layers.append(nn.Linear(fan_in, num_classes))
    return nn.Sequential(*layers)


def lenet300_100(input_shape: Sequence[int], num_classes: int, width: float = 1.0) -> nn.Sequential:
    """LeNet-300-100 (LeCun et al. 1998): 784 → 300 → 100 → 10 with ReLU; 266k weights on MNIST."""
    return mlp(input_shape, num_classes, hidden=_scaled(width, 300, 100), activation="relu")


def _conv_net(input_shape: Sequence[int], num_classes: int, blocks: Sequence[int],
              width: float) -> nn.Sequential:
    """VGG-style stages of two 3×3 convs then a 2×2 max-pool, then FC 256, 256 (Frankle & Carbin)."""
    if len(input_shape) != 3:
        raise ValueError(f"conv nets need images of shape (C, H, W), got input_shape {tuple(input_shape)}")
    layers: list[nn.Module] = []
    channels, (h, w) = input_shape[0], input_shape[1:]
    for out in _scaled(width, *blocks):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(out, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        channels, h, w = out, h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"input {tuple(input_shape)} is too small for {len(blocks)} pooling stages")
    fc = _scaled(width, 256, 256)
    layers += [nn.Flatten(), nn.Linear(channels * h * w, fc[0]), nn.ReLU(),
               nn.Linear(fc[0], fc[1]), nn.ReLU(), nn.Linear(fc[1], num_classes)]
    return nn.Sequential(*layers)


def conv2(input_shape: Sequence[int], num_classes: int, width: float = 1.0) -> nn.Sequential:
    """Conv-2 (Frankle & Carbin 2019, Fig. 2): conv 64, conv 64, pool, FC 256, 256, out."""
    return _conv_net(input_shape, num_classes, [64], width)


def conv4(input_shape: Sequence[int], num_classes: int, width: float = 1.0) -> nn.Sequential:
    """Conv-4 (Frankle & Carbin 2019): two stages (64, 128) of conv-conv-pool, FC 256, 256, out."""
    return _conv_net(input_shape, num_classes, [64, 128], width)


def cnn1d(input_shape: Sequence[int], num_classes: int, width: float = 1.0) -> nn.Sequential:
    """The MNIST-1D convnet (Greydanus 2020): three stride-2 convs of 25 channels, then Linear."""
    if len(input_shape) != 2:
        raise ValueError(f"cnn1d needs sequences of shape (C, L), got input_shape {tuple(input_shape)}")
    (c,) = _scaled(width, 25)
    body = nn.Sequential(nn.Conv1d(input_shape[0], c, 5, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(c, c, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv1d(c, c, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
    with torch.no_grad():
        features = body(torch.zeros(1, *input_shape)).shape[1]
    return nn.Sequential(*body, nn.Linear(features, num_classes))


def vgg_bn(input_shape: Sequence[int], num_classes: int, cfg: Sequence[int | str] = (16, "M", 32, "M", 64),
           width: float = 1.0) -> nn.Sequential:
    """A small VGG with BatchNorm, as in network slimming (Liu et al. 2017) and Early-Bird (You et al. 2020).

    ``cfg`` lists conv widths and ``"M"`` for a 2×2 max-pool (VGG's notation). Each conv is
    3×3 without bias, then ``BatchNorm2d`` (whose scales γ rank channels), then ReLU; the
    last feature map is averaged over space, so a Linear layer of ``cfg[-1]`` inputs reads
    it and removing a channel removes exactly one input of the next layer.
    """
    if len(input_shape) != 3:
        raise ValueError(f"vgg_bn needs images of shape (C, H, W), got input_shape {tuple(input_shape)}")
    bad = [c for c in cfg if c != "M" and not (isinstance(c, int) and c > 0)]
    if bad or not any(c != "M" for c in cfg):
        raise ValueError(f"cfg must list positive conv widths and 'M' for pooling, got {tuple(cfg)}")
    layers: list[nn.Module] = []
    channels, size = input_shape[0], min(input_shape[1:])
    for c in cfg:
        if c == "M":
            layers.append(nn.MaxPool2d(2))
            size //= 2
            continue
        (out,) = _scaled(width, c)
        layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    if size < 1:
        raise ValueError(f"input {tuple(input_shape)} is too small for the pooling in cfg {tuple(cfg)}")
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


# ------------------------------------------------------------------ sparsified by hand (slide 14)

def _conv_bn(c_in: int, c_out: int, kernel: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU()]


class Bottleneck(nn.Module):
    """ResNet's bottleneck (He et al. 2016): 1×1 down to ``c_out / reduction`` channels, 3×3 there, 1×1 back up,
    added to the input (through a 1×1 projection when the widths differ)."""

    def __init__(self, c_in: int, c_out: int, reduction: int = 4):
        super().__init__()
        mid = max(1, c_out // reduction)
        self.body = nn.Sequential(*_conv_bn(c_in, mid, 1), *_conv_bn(mid, mid, 3),
                                  nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Identity() if c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class Fire(nn.Module):
    """SqueezeNet's fire module (Iandola et al. 2016): squeeze to ``c_out / squeeze_ratio`` channels with 1×1
    convs, then expand with 1×1 and 3×3 convs side by side (half of ``c_out`` each), concatenated."""

    def __init__(self, c_in: int, c_out: int, squeeze_ratio: int = 8):
        super().__init__()
        if c_out < 2:
            raise ValueError(f"a fire module needs c_out ≥ 2 (split between 1×1 and 3×3), got {c_out}")
        squeeze = max(1, c_out // squeeze_ratio)
        self.squeeze = nn.Sequential(*_conv_bn(c_in, squeeze, 1))
        self.expand1 = nn.Sequential(*_conv_bn(squeeze, c_out // 2, 1))
        self.expand3 = nn.Sequential(*_conv_bn(squeeze, c_out - c_out // 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1(s), self.expand3(s)], dim=1)


def depthwise_separable(c_in: int, c_out: int) -> nn.Sequential:
    """MobileNet's block (Howard et al. 2017): a 3×3 conv per channel (``groups = c_in``), then a 1×1 conv across
    channels — ``9 c_in + c_in c_out`` weights instead of a 3×3 conv's ``9 c_in c_out``."""
    return nn.Sequential(*_conv_bn(c_in, c_in, 3, groups=c_in), *_conv_bn(c_in, c_out, 1))


BLOCKS = ("standard", "bottleneck", "fire", "depthwise")


def blocknet(input_shape: Sequence[int], num_classes: int, block: str = "standard", width: float = 1.0,
             channels: Sequence[int] = (32, 64, 128)) -> nn.Sequential:
    """A small convnet whose stages are one kind of block: a 3×3 stem, then per stage two blocks and a 2×2
    max-pool, global average pooling and a Linear layer.

    ``block``: ``"standard"`` (3×3 conv, BatchNorm, ReLU: the dense reference), ``"bottleneck"``
    (:class:`Bottleneck`), ``"fire"`` (:class:`Fire`) or ``"depthwise"`` (:func:`depthwise_separable`);
    ``width`` scales every stage's channels.
    """
    if len(input_shape) != 3:
        raise ValueError(f"blocknet needs images of shape (C, H, W), got input_shape {tuple(input_shape)}")
    if block not in BLOCKS:
        raise ValueError(f"unknown block {block!r}; expected one of {BLOCKS}")
    make = {"standard": lambda a, b: nn.Sequential(*_conv_bn(a, b, 3)), "bottleneck": Bottleneck, "fire": Fire,
            "depthwise": depthwise_separable}[block]
    widths = _scaled(width, *channels)
    layers: list[nn.Module] = _conv_bn(input_shape[0], widths[0], 3)
    c = widths[0]
    for out in widths[1:]:
        layers += [make(c, out), make(out, out), nn.MaxPool2d(2)]
        c = out
    if min(input_shape[1:]) >> (len(widths) - 1) < 1:
        raise ValueError(f"input {tuple(input_shape)} is too small for {len(widths) - 1} pooling stages")
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet300_100": lenet300_100, "conv2": conv2, "conv4": conv4, "cnn1d": cnn1d, "mlp": mlp,
    "vgg_bn": vgg_bn, "blocknet": blocknet,
}


def build(name: str, input_shape: Sequence[int], num_classes: int, seed: int = 0,
          device: str | torch.device | None = None, **kwargs) -> nn.Module:
    """Model ``name`` with weights drawn from ``seed``, without touching the global RNG.

    The weights are drawn on the CPU (so a seed gives the same network everywhere) and
    then moved to ``device`` when one is given. ``kwargs`` go to the constructor
    (``width=`` for all but ``mlp``, which takes ``hidden=`` and ``activation=``).

    >>> m = build("lenet300_100", (1, 28, 28), 10, seed=0)
    >>> int(parameter_table(m)["entries"].sum())
    266610
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {tuple(MODELS)}")
    if not _positive_int(num_classes) or num_classes < 2:
        raise ValueError(f"num_classes must be an int of at least 2, got {num_classes!r}")
    if isinstance(input_shape, (int, str)) or not input_shape or not all(_positive_int(d) for d in input_shape):
        raise ValueError(f"input_shape must be the shape of one example, e.g. (1, 28, 28), got {input_shape!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if device is not None:
        device = get_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS[name](tuple(input_shape), num_classes, **kwargs)
    return model.to(device) if device is not None else model




# Modules that act on each unit on its own: activations, and (in eval mode) BatchNorm.
ACTIVATION_LAYERS = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU, nn.Identity)
UNITWISE = (*ACTIVATION_LAYERS, nn.BatchNorm1d, nn.BatchNorm2d)


def unitwise_after(model: nn.Sequential, layer: str) -> list[str]:
    """The names of the :data:`UNITWISE` children that directly follow child ``layer``."""
    children = list(model.named_children())
    at = [name for name, _ in children].index(layer)
    after = []
    for name, module in children[at + 1:]:
        if not isinstance(module, UNITWISE):
            break
        after.append(name)
    return after


def output_child(model: nn.Sequential, layer: str) -> str:
    """The last child whose output is still ``layer``'s units: ``layer`` or its last unit-wise follower."""
    return [layer, *unitwise_after(model, layer)][-1]


@torch.no_grad()
def responses(model: nn.Sequential, layer: str, x: torch.Tensor) -> torch.Tensor:
    """``(examples, units)``: what Linear or Conv2d child ``layer`` of ``model`` passes on for each
    input of ``x``, after the unit-wise children that follow it; a channel's response is its spatial mean."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"responses are read child by child of an nn.Sequential, got {type(model).__name__}")
    names = [name for name, m in model.named_children() if isinstance(m, nn.Linear | nn.Conv2d)]
    if layer not in names:
        raise ValueError(f"layer must name a Linear or Conv2d child of the model: {names}; got {layer!r}")
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2 examples, got shape {tuple(x.shape)}")
    last = output_child(model, layer)
    out = x
    for name, module in model.named_children():
        out = module(out)
        if name == last:
            break
    return out.flatten(2).mean(2) if out.ndim > 2 else out


def parameter_table(model: nn.Module) -> pd.DataFrame:
    """One row per parameter tensor: name, shape, number of entries and share of the total."""
    rows = [{"parameter": name, "shape": tuple(p.shape), "entries": p.numel()}
            for name, p in model.named_parameters()]
    table = pd.DataFrame(rows).set_index("parameter")
    table["share"] = (table["entries"] / table["entries"].sum()).round(4)
    return table

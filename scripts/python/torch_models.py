"""The paper's four architectures in PyTorch, and loading of the .npz files advcorrect writes.

One module, shared by the PyTorch oracle (scripts/oracle/torch_oracle.py) and the ONNX export:

    from torch_models import load_npz, build_model, with_normalization
    model = load_npz('model.npz', arch='cnn')          # eval mode, float32, NCHW input
    model = load_npz('cifar10_ResNet8_normDataAug.npz')  # arch inferred, BN stats from *_bn_stats.npz

The layouts are PyTorch's own (advcorrect's exportNpz writes them, the authors' files in
../shared/models use them): Conv2d weight [out, in, kh, kw], Linear weight [out, in], NCHW
activations, flatten in C, H, W order. Module names are the state_dict names advcorrect maps its
tfjs layers to ('conv1', 'fc1', 'output', 'layer2.0.downsample.0', ...). BatchNorm running
statistics (ResNet8) live in a second file, `<model without .npz>_bn_stats.npz`.

The models take inputs in the model's own input space: for the CIFAR-10 ResNet8 that is the
per-channel normalised image, (x - mean[c]) / std[c]. `with_normalization` wraps a model so that it
takes pixels in [0, 1] instead (what advcorrect's attacks perturb).

Needs torch and numpy only (Debian 12: apt-get install python3-torch). Development and CI tool;
never a runtime dependency of advcorrect.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

ARCH_NAMES = ('fc', 'cnnlight', 'cnn', 'resnet8')

# Input space of the authors' models of each architecture (NCHW shape of one image, normalisation).
INPUT_SHAPES = {'fc': (1, 28, 28), 'cnnlight': (1, 28, 28), 'cnn': (1, 28, 28), 'resnet8': (3, 32, 32)}
CIFAR10_NORMALIZATION = {'mean': (0.4914, 0.4822, 0.4465), 'std': (0.2023, 0.1994, 0.2010)}
NORMALIZATIONS = {'fc': None, 'cnnlight': None, 'cnn': None, 'resnet8': CIFAR10_NORMALIZATION}

BN_EPS = 1e-5


class FC(nn.Module):
    """flatten -> fc1 Linear(784, 200) -> ReLU -> fc2 Linear(200, 200) -> ReLU -> output Linear(200, 10)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(784, 200)
        self.fc2 = nn.Linear(200, 200)
        self.output = nn.Linear(200, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.output(x)


class SmallCNN(nn.Module):
    """Two 3x3 stride-2 convolutions (padding 1) with ReLU, flatten (C, H, W order), two Linear layers."""

    def __init__(self, c1: int, c2: int, hidden: int, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.output = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        return self.output(x)


def CNNLight(num_classes: int = 10) -> SmallCNN:
    return SmallCNN(8, 16, 50, num_classes)


def CNN(num_classes: int = 10) -> SmallCNN:
    return SmallCNN(16, 32, 100, num_classes)


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut (identity or conv1x1 + BN), then ReLU."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels, eps=BN_EPS),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + shortcut)


class ResNet8(nn.Module):
    """conv1 (3->16, no bias) + bn1 + ReLU; 3 stages of 2 basic blocks (16, 32, 64 channels; stages 2
    and 3 start with stride 2); global average pool; output Linear(64, 10)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16, eps=BN_EPS)
        self.layer1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 16, 1))
        self.layer2 = nn.Sequential(BasicBlock(16, 32, 2), BasicBlock(32, 32, 1))
        self.layer3 = nn.Sequential(BasicBlock(32, 64, 2), BasicBlock(64, 64, 1))
        self.output = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.mean(x, dim=(2, 3))
        return self.output(x)


class Normalized(nn.Module):
    """A model preceded by the per-channel normalisation (x - mean[c]) / std[c]: takes pixels in [0, 1]."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def build_model(arch: str, num_classes: int = 10) -> nn.Module:
    """A freshly initialised model of one of the paper's architectures (train mode, as nn.Module is)."""
    if arch == 'fc':
        return FC(num_classes)
    if arch == 'cnnlight':
        return CNNLight(num_classes)
    if arch == 'cnn':
        return CNN(num_classes)
    if arch == 'resnet8':
        return ResNet8(num_classes)
    raise ValueError(f"arch must be one of {', '.join(ARCH_NAMES)}, not {arch!r}")


def with_normalization(model: nn.Module, arch: str, normalization: Optional[dict] = None) -> nn.Module:
    """`model` taking [0, 1] pixels: wrapped in the given normalisation (default: the architecture's,
    CIFAR-10's for resnet8), or returned as is when there is none."""
    norm = normalization if normalization is not None else NORMALIZATIONS[arch]
    if not norm:
        return model
    return Normalized(model, norm['mean'], norm['std']).eval()


def read_npz(path: str) -> Dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def infer_arch(arrays: Dict[str, np.ndarray]) -> str:
    """The architecture whose state_dict has exactly these trainable tensor names and shapes."""
    for arch in ARCH_NAMES:
        model = build_model(arch)
        shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
        if len(shapes) == len(arrays) and all(k in arrays and tuple(arrays[k].shape) == s for k, s in shapes.items()):
            return arch
    names = ', '.join(sorted(arrays)[:6])
    raise ValueError(f'the tensors ({names}, ...) match none of {", ".join(ARCH_NAMES)}')


def bn_stats_path(path: str) -> str:
    return (path[:-4] if path.endswith('.npz') else path) + '_bn_stats.npz'


def load_npz(path: str, arch: Optional[str] = None, bn_stats: Optional[str] = None) -> nn.Module:
    """Builds `arch` (inferred from the tensor names and shapes when None) and loads the PyTorch
    state_dict tensors of `path` into it, with BatchNorm running statistics from `bn_stats` (default
    `<path without .npz>_bn_stats.npz`; required when the architecture has BatchNorm). Every tensor
    must be present and none may be left over (num_batches_tracked aside). Returns the model in eval
    mode, float32; its `arch` attribute names the architecture."""
    arrays = read_npz(path)
    if arch is None:
        arch = infer_arch(arrays)
    model = build_model(arch)
    expected = model.state_dict()
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if has_bn:
        stats_file = bn_stats if bn_stats is not None else bn_stats_path(path)
        if not os.path.exists(stats_file):
            raise FileNotFoundError(f'{arch} has BatchNorm layers: their running statistics are needed from {stats_file} (not found)')
        for key, value in read_npz(stats_file).items():
            arrays.setdefault(key, value)
    state = {}
    missing = []
    for key, tensor in expected.items():
        if key not in arrays:
            if key.endswith('num_batches_tracked'):
                state[key] = tensor
                continue
            missing.append(key)
            continue
        value = arrays[key]
        if tuple(value.shape) != tuple(tensor.shape):
            raise ValueError(f'{path}:{key} has shape {list(value.shape)}, a {arch} needs {list(tensor.shape)}')
        state[key] = torch.from_numpy(np.ascontiguousarray(value)).to(tensor.dtype)
    if missing:
        raise ValueError(f'{path} lacks {len(missing)} tensors of a {arch}: {", ".join(missing[:6])} (wrong arch?)')
    extra = [k for k in arrays if k not in expected and not k.endswith('num_batches_tracked')]
    if extra:
        raise ValueError(f'{path} has tensors that a {arch} does not: {", ".join(extra[:6])} (wrong arch?)')
    model.load_state_dict(state, strict=True)
    model.arch = arch
    return model.float().eval()


if __name__ == '__main__':
    import sys

    for file in sys.argv[1:]:
        net = load_npz(file)
        count = sum(p.numel() for p in net.parameters())
        print(f'{file}: {net.arch}, {count} trainable parameters')

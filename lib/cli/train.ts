/** `advcorrect train`: train one of the paper's architectures with the authors' recipe, then test it. */
import { Command, Option } from 'commander';
import { initBackend, type BackendRequest } from '../backend/index.js';
import { type DatasetName, loadDataset } from '../data/datasets.js';
import { shuffleIndices, subset } from '../data/sampling.js';
import { ARCHITECTURES, type ArchName, buildModel, countTrainableParams } from '../models/architectures.js';
import { saveModel } from '../models/io.js';
import { evaluateModel, TRAIN_RECIPES, type TrainRecipe, trainModel } from '../models/train.js';
import { parseArch, parseNonNegativeInteger, parsePositiveInteger, parsePositiveNumber, printJson } from './common.js';
import { parseBackend, parseDatasetName } from './eval.js';
import { ProgressBar } from './progress.js';

interface TrainFlags {
  arch: ArchName;
  dataset: DatasetName;
  epochs: number;
  batchSize: number;
  trainSize?: number;
  testSize?: number;
  lr?: number;
  recipe?: TrainRecipe;
  seed: number;
  backend?: BackendRequest;
  out: string;
  json?: boolean;
  quiet?: boolean;
}

async function trainCommand(flags: TrainFlags): Promise<void> {
  const backend = await initBackend(flags.backend);
  const spec = ARCHITECTURES[flags.arch];
  const fullTrain = await loadDataset(flags.dataset, 'train');
  const shape = [fullTrain.height, fullTrain.width, fullTrain.channels];
  if (shape.some((d, i) => d !== spec.inputShape[i])) {
    throw new RangeError(`--arch ${flags.arch} takes ${spec.inputShape.join('×')} inputs, ${flags.dataset} has ${shape.join('×')} images`);
  }
  const train =
    flags.trainSize !== undefined && flags.trainSize < fullTrain.count
      ? subset(fullTrain, shuffleIndices(fullTrain.count, flags.seed).subarray(0, flags.trainSize))
      : fullTrain;
  const fullTest = await loadDataset(flags.dataset, 'test');
  const test =
    flags.testSize !== undefined && flags.testSize < fullTest.count
      ? subset(fullTest, Array.from({ length: flags.testSize }, (_, i) => i))
      : fullTest;
  const recipe: TrainRecipe = flags.recipe ?? (flags.dataset === 'cifar10' ? 'cifar10' : 'mnist');
  const normalization = recipe === 'cifar10' ? spec.normalization : undefined;

  const model = buildModel(flags.arch, { seed: flags.seed });
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
  process.once('SIGINT', onSigint);
  const bar = new ProgressBar(`train ${flags.arch}`, flags.epochs * train.count, { quiet: flags.quiet });
  if (!flags.quiet) {
    process.stderr.write(
      `advcorrect train: ${flags.arch} (${countTrainableParams(model)} parameters) on ${train.count} ${flags.dataset} images, ` +
        `${flags.epochs} epochs, batch ${flags.batchSize}, recipe ${recipe}, backend ${backend}\n`,
    );
  }
  let result;
  try {
    result = await trainModel(model, train, {
      recipe,
      epochs: flags.epochs,
      batchSize: flags.batchSize,
      ...(flags.lr !== undefined ? { learningRate: flags.lr } : {}),
      seed: flags.seed,
      normalization: normalization ?? null,
      signal: controller.signal,
      onProgress: (p) =>
        bar.update(p.examples, `epoch ${p.epoch + 1}/${p.epochs} loss ${p.loss.toFixed(4)} acc ${p.accuracy.toFixed(4)}`),
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
  const testStart = performance.now();
  const tested = await evaluateModel(model, test, { normalization });
  const testSeconds = (performance.now() - testStart) / 1000;
  await saveModel(model, flags.out, { arch: flags.arch, ...(normalization ? { normalization } : {}) });
  const summary = {
    backend,
    arch: flags.arch,
    dataset: flags.dataset,
    recipe,
    parameters: countTrainableParams(model),
    trainSize: train.count,
    testSize: test.count,
    batchSize: flags.batchSize,
    seed: flags.seed,
    epochs: result.epochs,
    seconds: result.seconds,
    examplesPerSecond: result.examplesPerSecond,
    test: { ...tested, seconds: testSeconds },
    out: flags.out,
  };
  if (flags.json) {
    printJson(summary);
  } else {
    for (const e of result.epochs) {
      process.stdout.write(
        `epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)} accuracy ${e.accuracy.toFixed(4)} lr ${e.learningRate.toPrecision(3)} (${e.seconds.toFixed(1)} s)\n`,
      );
    }
    process.stdout.write(
      `test accuracy ${tested.accuracy.toFixed(4)} (loss ${tested.loss.toFixed(4)}, ${test.count} images); ` +
        `${result.examplesPerSecond.toFixed(0)} training examples/s on ${backend}; model saved to ${flags.out}\n`,
    );
  }
  model.dispose();
}

export function register(program: Command): void {
  program
    .command('train')
    .description("Train a model with the paper's authors' recipe (MNIST: Adam 1e-3 + StepLR 0.7; CIFAR-10: SGD momentum + crop/flip) and report its test accuracy")
    .requiredOption('--arch <name>', 'architecture: fc, cnnlight, cnn, resnet8, or mlp-wide (784–4096–4096–10, not from the paper: the scale test)', parseArch)
    .requiredOption('--out <dir>', 'directory for the trained tfjs model (model.json + weights.bin)')
    .option('--dataset <name>', 'mnist, fashion-mnist or cifar10', parseDatasetName, 'mnist' as DatasetName)
    .option('--epochs <n>', 'epochs', parsePositiveInteger, 10)
    .option('--batch-size <n>', 'batch size', parsePositiveInteger, 64)
    .option('--train-size <n>', 'train on a seeded random subset of this many images (default: all)', parsePositiveInteger)
    .option('--test-size <n>', 'test on the first n test images (default: all)', parsePositiveInteger)
    .option('--lr <rate>', "initial learning rate (default: the recipe's)", parsePositiveNumber)
    .addOption(new Option('--recipe <name>', 'optimiser recipe (default: from the data set)').choices([...TRAIN_RECIPES]))
    .option('--seed <n>', 'seed of the weights, the example order and the augmentation', parseNonNegativeInteger, 0)
    .option('--backend <name>', 'auto, tensorflow, native, wasm or cpu (default: $ADVCORRECT_BACKEND or auto)', parseBackend)
    .option('--json', 'print one JSON object on stdout')
    .option('--quiet', 'no progress on stderr')
    .addHelpText('after', '\nTraining stops with an error (exit 1, no model saved) when the loss of a batch, or a weight at the end of an\nepoch, is NaN or infinite (e.g. --lr far too large). Ctrl-C stops it with exit 130.')
    .action(async (flags: TrainFlags) => trainCommand(flags));
}

/** A small dense MNIST classifier trained in a test (a few seconds), for tests that need a real model without ../shared. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadDataset } from '../../lib/data/datasets.js';
import { takeFirst } from '../../lib/data/sampling.js';

/** flatten → dense(units, ReLU) → dense(10), seeded, 8 epochs of Adam on the first 2,000 training images. */
export async function trainTinyMnistModel(units: number, seeds: [number, number]): Promise<tfl.LayersModel> {
  const train = takeFirst(await loadDataset('mnist', 'train'), 2000);
  const input = tfl.input({ shape: [28, 28, 1] });
  let x = tfl.layers.flatten().apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units, activation: 'relu', kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds[0] }) }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 10, kernelInitializer: tfl.initializers.glorotUniform({ seed: seeds[1] }) }).apply(x) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(3e-3), loss: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.losses.softmaxCrossEntropy(yTrue, yPred) });
  const xs = tf.tensor4d(train.images, [train.count, 28, 28, 1]);
  const ys = tf.oneHot(tf.tensor1d(Int32Array.from(train.labels), 'int32'), 10);
  await model.fit(xs, ys, { epochs: 8, batchSize: 64, shuffle: false, verbose: 0 });
  xs.dispose();
  ys.dispose();
  return model;
}

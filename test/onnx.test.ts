/**
 * ONNX import and export (lib/models/onnx) against onnxruntime-node, an independent runtime: every
 * fixture of test/fixtures/onnx (made by scripts/onnx/make_fixtures.py with torch.onnx.export) gives
 * the same outputs on real MNIST / CIFAR-10 test images, through model.predict and through the
 * gradient engine's compiled graph; a perturbed model exported back gives onnxruntime the same
 * outputs as our perturbed model; the authors' models through ONNX equal the .npz path.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend/index.js';
import { loadDataset, normalize, type ImageDataset } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { compileModel, forwardGraph, marginRows, predictLogits, type WeightOverrides } from '../lib/models/index.js';
import { loadModel, type LoadedModel } from '../lib/models/io.js';
import { exportOnnx } from '../lib/models/onnx/index.js';
import { ParameterView } from '../lib/models/parameters.js';
import { packageRoot } from '../lib/native.js';
import { fixtures, maxAbsDiff, runOrt } from './helpers/onnx.js';

const shared = path.resolve(packageRoot, '..', 'shared');

interface Fixture {
  file: string;
  dataset: 'mnist' | 'cifar10';
  /** The network ends in Softmax: onnxruntime returns probabilities, we the logits before it. */
  softmax?: boolean;
  inputScale?: number;
  /** ONNX operators the fixture must contain (so that it keeps covering them). */
  ops: string[];
  /** The input normalisation the import must take out of the graph. */
  normalization?: { mean: number[]; std: number[] };
}

const FIXTURES: Fixture[] = [
  { file: 'mnist_bn.onnx', dataset: 'mnist', ops: ['BatchNormalization', 'Conv', 'Flatten', 'Gemm', 'Relu', 'Identity', 'Dropout'] },
  { file: 'cifar_residual.onnx', dataset: 'cifar10', ops: ['Add', 'Conv', 'GlobalAveragePool', 'Gemm'] },
  { file: 'mnist_pool_norm.onnx', dataset: 'mnist', normalization: { mean: [0.1307], std: [0.3081] }, ops: ['Sub', 'Div', 'MaxPool', 'Pad', 'AveragePool', 'Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape', 'MatMul', 'Add', 'Constant'] },
  { file: 'mnist_acts.onnx', dataset: 'mnist', softmax: true, inputScale: 255, normalization: { mean: [0], std: [1] }, ops: ['LeakyRelu', 'Sigmoid', 'Tanh', 'Concat', 'Mul', 'Sub', 'Transpose', 'Softmax'] },
  { file: 'mnist_dilated.onnx', dataset: 'mnist', ops: ['Conv', 'Gemm', 'dilations'] },
  { file: 'mnist_grouped.onnx', dataset: 'mnist', ops: ['Conv', 'group', 'Gemm'] },
];

const TOLERANCE = 1e-4;

/** What we compute for the ONNX model's output: logits, or their softmax for a Softmax-last network. */
function ours(loaded: LoadedModel, data: ImageDataset, softmax = false): { predicted: Float32Array; compiled: Float32Array } {
  const input = loaded.normalization ? normalize(data.images, loaded.normalization, data.channels) : data.images;
  const predicted = predictLogits(loaded.model, input);
  const graph = compileModel(loaded.model);
  const compiled = tf.tidy(() => {
    const x = tf.tensor4d(input, [data.count, data.height, data.width, data.channels]);
    const logits = forwardGraph(graph, x)[graph.outputSlot];
    return (softmax ? tf.softmax(logits) : logits).dataSync() as Float32Array;
  });
  return { predicted: softmax ? (tf.tidy(() => tf.softmax(tf.tensor2d(predicted, [data.count, loaded.numClasses])).dataSync()) as Float32Array) : predicted, compiled: Float32Array.from(compiled) };
}

/** Deterministic change of every trainable weight: w ← w·(1 + 0.05·sin k) + 0.01·cos k. */
function perturb(model: LoadedModel['model']): void {
  const view = new ParameterView(model);
  const w = view.read();
  for (let k = 0; k < w.length; k++) w[k] = w[k] * (1 + 0.05 * Math.sin(k)) + 0.01 * Math.cos(k);
  view.write(w);
}

/**
 * The gradient engine's margin rows (its own backward pass) against tfjs autodiff through the
 * compiled forward graph, for the first two images.
 */
async function checkMarginRows(loaded: LoadedModel, data: ImageDataset): Promise<void> {
  const n = 2;
  const size = data.height * data.width * data.channels;
  const pixels = data.images.subarray(0, n * size);
  const input = loaded.normalization ? normalize(pixels, loaded.normalization, data.channels) : pixels;
  const labels = Array.from(data.labels.subarray(0, n));
  const view = new ParameterView(loaded.model);
  const rows = await marginRows(loaded.model, view, input, labels, { delta: 0, classes: 'worst', format: 'dense' });
  const graph = compileModel(loaded.model);
  const weights = view.entries.map((e) => graph.steps.find((s) => s.layer === e.layer)!.weights.get(e.name)!.read());
  for (let r = 0; r < n; r++) {
    const j = rows.wrongClass[r];
    const grads = tf.tidy(() => {
      const x = tf.tensor4d(input.subarray(r * size, (r + 1) * size), [1, data.height, data.width, data.channels]);
      const f = (...ws: tf.Tensor[]): tf.Scalar => {
        const overrides: WeightOverrides = new Map();
        view.entries.forEach((e, k) => overrides.set(`${e.layer}/${e.name}`, ws[k]));
        const logits = forwardGraph(graph, x, overrides)[graph.outputSlot];
        return tf.sub(tf.gather(tf.reshape(logits, [-1]), j), tf.gather(tf.reshape(logits, [-1]), labels[r])) as tf.Scalar;
      };
      return tf.grads(f)(weights).map((g) => Float32Array.from(g.dataSync()));
    });
    const expected = new Float32Array(view.size);
    view.entries.forEach((e, k) => expected.set(grads[k], e.offset));
    const scale = Math.max(1, ...Array.from(expected, Math.abs));
    assert.ok(maxAbsDiff(rows.dense![r], expected) < 2e-5 * scale, `row ${r} differs by ${maxAbsDiff(rows.dense![r], expected)}`);
    assert.ok(expected.some((v) => v !== 0));
  }
}

describe('ONNX import and export against onnxruntime-node', function () {
  this.timeout(300_000);
  const data = new Map<string, ImageDataset>();
  let tmp: string;

  before(async () => {
    await initBackend();
    data.set('mnist', takeFirst(await loadDataset('mnist', 'test'), 48));
    data.set('cifar10', takeFirst(await loadDataset('cifar10', 'test'), 24));
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-onnx-'));
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  for (const fixture of FIXTURES) {
    describe(fixture.file, () => {
      const file = path.join(fixtures, fixture.file);

      it('covers its operators and is an opset 11–17 export', async () => {
        const bytes = await readFile(file);
        for (const op of fixture.ops) assert.ok(bytes.includes(Buffer.from(op)), `${fixture.file} has no ${op} node`);
      });

      it('imports with logits equal to onnxruntime on real images (predict and compiled graph)', async () => {
        const loaded = await loadModel(file, fixture.inputScale ? { inputScale: fixture.inputScale } : {});
        assert.equal(loaded.source, 'onnx');
        const images = data.get(fixture.dataset)!;
        const reference = await runOrt(file, images, fixture.inputScale ?? 1);
        const { predicted, compiled } = ours(loaded, images, fixture.softmax);
        assert.ok(maxAbsDiff(predicted, reference) < TOLERANCE, `predict differs by ${maxAbsDiff(predicted, reference)}`);
        assert.ok(maxAbsDiff(compiled, reference) < TOLERANCE, `compiled graph differs by ${maxAbsDiff(compiled, reference)}`);
        // the classifier is a real one: most of the 48 test images right
        const labels = images.labels;
        let right = 0;
        for (let i = 0; i < images.count; i++) {
          const row = Array.from(reference.subarray(i * 10, i * 10 + 10));
          if (row.indexOf(Math.max(...row)) === labels[i]) right++;
        }
        assert.ok(right > (fixture.dataset === 'mnist' ? 0.7 : 0.15) * images.count, `only ${right}/${images.count} right`);
        if (fixture.softmax) assert.ok(loaded.notices?.some((n) => n.includes('Softmax')), 'no notice about the dropped Softmax');
        if (fixture.normalization) {
          assert.ok(loaded.normalization, 'the input normalisation was not taken out of the graph');
          assert.ok(maxAbsDiff(loaded.normalization.mean, fixture.normalization.mean) < 1e-6, JSON.stringify(loaded.normalization));
          assert.ok(maxAbsDiff(loaded.normalization.std, fixture.normalization.std) < 1e-6, JSON.stringify(loaded.normalization));
          assert.ok(loaded.notices?.some((n) => n.includes('applied outside the network')), 'no notice about the normalisation');
        } else assert.equal(loaded.normalization, undefined);
        loaded.model.dispose();
      });

      it("the gradient engine's margin rows equal autodiff through the imported graph", async () => {
        const loaded = await loadModel(file, fixture.inputScale ? { inputScale: fixture.inputScale } : {});
        await checkMarginRows(loaded, data.get(fixture.dataset)!);
        loaded.model.dispose();
      });

      it('exports unchanged weights byte for byte, and perturbed weights that onnxruntime agrees with', async () => {
        const loaded = await loadModel(file, fixture.inputScale ? { inputScale: fixture.inputScale } : {});
        const same = path.join(tmp, `same-${fixture.file}`);
        await exportOnnx(loaded, loaded.model, same);
        assert.ok(Buffer.compare(await readFile(same), await readFile(file)) === 0, 're-export of the unchanged model is not byte-identical');
        perturb(loaded.model);
        const out = path.join(tmp, fixture.file);
        await exportOnnx(loaded, loaded.model, out);
        const images = data.get(fixture.dataset)!;
        const reference = await runOrt(out, images, fixture.inputScale ?? 1);
        const before = await runOrt(file, images, fixture.inputScale ?? 1);
        assert.ok(maxAbsDiff(reference, before) > 1e-3, 'the perturbation did not change the exported model');
        const { predicted } = ours(loaded, images, fixture.softmax);
        assert.ok(maxAbsDiff(predicted, reference) < TOLERANCE, `exported model differs by ${maxAbsDiff(predicted, reference)}`);
        // and the exported file imports again to the same model
        const again = await loadModel(out, fixture.inputScale ? { inputScale: fixture.inputScale } : {});
        assert.ok(maxAbsDiff(ours(again, images, fixture.softmax).predicted, predicted) < 1e-6);
        loaded.model.dispose();
        again.model.dispose();
      });
    });
  }

  describe("the authors' models through ONNX equal the .npz path", () => {
    const pairs = [
      { onnx: 'mnist_cnnlight.onnx', npz: 'mnist_ConvNetLight_norm01.npz', arch: 'cnnlight' as const, dataset: 'mnist' },
      { onnx: 'mnist_cnn.onnx', npz: 'mnist_ConvNet_norm01.npz', arch: 'cnn' as const, dataset: 'mnist' },
      { onnx: 'cifar10_resnet8.onnx', npz: 'cifar10_ResNet8_normDataAug.npz', arch: 'resnet8' as const, dataset: 'cifar10' },
    ];
    for (const pair of pairs) {
      it(`${pair.onnx}: same parameters, normalisation and logits as ${pair.npz}, and onnxruntime agrees`, async function () {
        const npz = path.join(shared, 'models', pair.npz);
        if (!existsSync(npz)) {
          console.log(`skipped: ${npz} is absent`);
          this.skip();
        }
        const viaOnnx = await loadModel(path.join(fixtures, pair.onnx));
        const viaNpz = await loadModel(npz, { arch: pair.arch });
        const images = data.get(pair.dataset)!;
        const a = ours(viaOnnx, images).predicted;
        const b = ours(viaNpz, images).predicted;
        assert.ok(maxAbsDiff(a, b) < TOLERANCE, `logits differ by ${maxAbsDiff(a, b)}`);
        assert.ok(maxAbsDiff(a, await runOrt(path.join(fixtures, pair.onnx), images)) < TOLERANCE);
        const pa = new ParameterView(viaOnnx.model);
        const pb = new ParameterView(viaNpz.model);
        assert.equal(pa.size, pb.size);
        assert.deepEqual(pa.entries.map((e) => e.shape), pb.entries.map((e) => e.shape));
        assert.ok(maxAbsDiff(pa.read(), pb.read()) === 0, 'parameter vectors differ');
        if (viaNpz.normalization) {
          assert.ok(viaOnnx.normalization, 'the in-graph normalisation was not recognised');
          assert.ok(maxAbsDiff(viaOnnx.normalization.mean, viaNpz.normalization.mean) < 1e-6);
          assert.ok(maxAbsDiff(viaOnnx.normalization.std, viaNpz.normalization.std) < 1e-6);
        } else assert.equal(viaOnnx.normalization, undefined);
        // a changed model written back: onnxruntime agrees (ResNet8: initializers the exporter had
        // de-duplicated through Identity nodes are untied when they now differ)
        perturb(viaOnnx.model);
        const out = path.join(tmp, pair.onnx);
        await exportOnnx(viaOnnx, viaOnnx.model, out);
        const exported = await runOrt(out, images);
        assert.ok(maxAbsDiff(ours(viaOnnx, images).predicted, exported) < TOLERANCE, `exported model differs by ${maxAbsDiff(ours(viaOnnx, images).predicted, exported)}`);
        viaOnnx.model.dispose();
        viaNpz.model.dispose();
      });
    }
  });
});

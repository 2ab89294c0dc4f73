/**
 * ONNX models through the command line (`--model net.onnx` in eval, attack and correct), the
 * corrected model written back as ONNX and checked with onnxruntime-node, and every kind of bad
 * input refused with its own one-line message: from the library as AdvcorrectError ERR_ONNX, from
 * the CLI with exit code 2.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend/index.js';
import { AdvcorrectError } from '../lib/errors.js';
import { loadDataset, normalize } from '../lib/data/datasets.js';
import { takeFirst } from '../lib/data/sampling.js';
import { predictLogits } from '../lib/models/index.js';
import { loadModel } from '../lib/models/io.js';
import { exportOnnx } from '../lib/models/onnx/index.js';
import { ParameterView } from '../lib/models/parameters.js';
import { packageRoot } from '../lib/native.js';
import { fixtures, maxAbsDiff, runOrt } from './helpers/onnx.js';

const run = promisify(execFile);
const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');

async function advcorrect(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function isOnnxError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof AdvcorrectError, `not an AdvcorrectError: ${String(error)}`);
    assert.equal(error.code, 'ERR_ONNX');
    assert.match(error.message, pattern);
    return true;
  };
}

describe('ONNX models: bad input', function () {
  this.timeout(120_000);
  let tmp: string;
  const bad: Array<{ what: string; file: () => string; message: RegExp }> = [];

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-onnx-bad-'));
    const good = await readFile(path.join(fixtures, 'mnist_bn.onnx'));
    await writeFile(path.join(tmp, 'truncated.onnx'), good.subarray(0, Math.floor(good.length / 2)));
    await writeFile(path.join(tmp, 'text.onnx'), 'this is not a protobuf message\n');
    await writeFile(path.join(tmp, 'empty.onnx'), new Uint8Array(0));
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  const cases: Array<[string, string, RegExp]> = [
    ['a truncated file', 'tmp:truncated.onnx', /truncated\.onnx: truncated or not an ONNX file/],
    ['a text file', 'tmp:text.onnx', /text\.onnx: truncated or not an ONNX file/],
    ['an empty file', 'tmp:empty.onnx', /empty\.onnx: not an ONNX model \(no IR version or no graph\)/],
    ['an unsupported operator', 'bad_elu.onnx', /node '\/Elu' \(Elu\): operator Elu is not supported \(supported: Conv, Gemm, MatMul, Relu, .*Softmax/],
    ['a padded MaxPool', 'bad_padded_pool.onnx', /node '\/MaxPool' \(MaxPool\): MaxPool with padding \[1, 1, 1, 1\] is not supported \(only unpadded pooling\)/],
    ['dynamic image sizes', 'bad_dynamic_size.onnx', /input 'image' has shape \[batch, 1, height, width\].*dynamic image sizes cannot be resolved/],
    ['two inputs', 'bad_two_inputs.onnx', /the model has 2 inputs \(a, b\); exactly one image input is supported/],
    ['two outputs', 'bad_two_outputs.onnx', /the model has 2 outputs \(logits, features\); exactly one \(the logits\) is supported/],
    ['an opset below 11', 'bad_opset10.onnx', /opset 10 is not supported \(supported: 11–17\)/],
  ];
  for (const [what, name, message] of cases) bad.push({ what, file: () => (name.startsWith('tmp:') ? path.join(tmp, name.slice(4)) : path.join(fixtures, name)), message });

  for (const c of cases) {
    const [what, , message] = c;
    it(`loadModel refuses ${what} with ERR_ONNX`, async () => {
      const entry = bad.find((b) => b.what === what)!;
      const variables = Object.keys(tf.engine().registeredVariables).length;
      await assert.rejects(loadModel(entry.file()), isOnnxError(message));
      assert.equal(Object.keys(tf.engine().registeredVariables).length, variables, 'the refused import left variables behind');
    });
  }

  it('the CLI prints one line and exits 2 for each, writing nothing', async () => {
    for (const entry of bad) {
      const out = path.join(tmp, `attack-${entry.what.replace(/ /g, '-')}`);
      const result = await advcorrect('attack', '--model', entry.file(), '--dataset', 'mnist', '--n', '1', '--out', out);
      assert.equal(result.code, 2, `${entry.what}: exit ${result.code}, ${result.stderr}`);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${entry.what}: ${result.stderr}`);
      assert.match(lines[0], new RegExp(`^advcorrect: .*${entry.message.source}`));
      assert.equal(result.stdout, '');
      assert.ok(!existsSync(out), `${entry.what}: ${out} was written`);
    }
  });

  it('correct and baseline refuse a bad model before writing anything in --out', async () => {
    for (const command of [['correct'], ['baseline', '--method', 'finetune']]) {
      const out = path.join(tmp, `${command[0]}-bad`);
      const result = await advcorrect(...command, '--model', bad[0]!.file(), '--dataset', 'mnist', '--out', out);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.ok(!existsSync(out), `${command[0]}: ${out} was written`);
    }
  });

  it('--input-scale reaches the loader from the CLI, and the loader\'s notices reach the user', async () => {
    const file = path.join(fixtures, 'mnist_pool_norm.onnx');
    const one = await advcorrect('eval', '--model', file, '--dataset', 'mnist', '--n', '64', '--attack', 'none', '--json');
    const byte = await advcorrect('eval', '--model', file, '--dataset', 'mnist', '--n', '64', '--attack', 'none', '--input-scale', '255', '--json');
    assert.equal(one.code, 0, one.stderr);
    assert.equal(byte.code, 0, byte.stderr);
    // The in-graph normalisation becomes mean/std on [0, 1] pixels: divided by 255 when the graph takes bytes.
    assert.match(one.stderr, /note: input normalisation in the graph .* mean \[0\.1307\], std \[0\.3081\] on pixels in \[0, 1\]/);
    assert.match(byte.stderr, /note: input normalisation in the graph .*with input scale 255.* mean \[0\.000512549\], std \[0\.00120824\]/);
    const zero = await advcorrect('eval', '--model', file, '--dataset', 'mnist', '--n', '4', '--input-scale', '0');
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--input-scale.*expected a positive number/);
  });

  it('an input size that does not fit the data set is refused with exit 2', async () => {
    const result = await advcorrect('eval', '--model', path.join(fixtures, 'mnist_bn.onnx'), '--dataset', 'cifar10', '--n', '4');
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr.trim(), /^advcorrect: the model takes 28×28×1 inputs, the data set has 32×32×3 images$/);
  });

  it('inputScale is checked and only for .onnx files', async () => {
    await assert.rejects(loadModel(path.join(fixtures, 'mnist_bn.onnx'), { inputScale: 0 }), { name: 'RangeError', message: 'inputScale must be a positive finite number' });
    await assert.rejects(loadModel(path.join(tmp, 'model.json'), { inputScale: 255 }), { name: 'TypeError', message: 'inputScale applies to .onnx models only' });
    await assert.rejects(exportOnnx({}, (await loadModel(path.join(fixtures, 'mnist_bn.onnx'))).model, path.join(tmp, 'x.onnx')), {
      name: 'TypeError',
      message: 'base must be a model loaded from an ONNX file',
    });
  });
});

describe('ONNX models through the CLI', function () {
  this.timeout(600_000);
  let tmp: string;

  before(async () => {
    await initBackend();
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-onnx-cli-'));
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('eval --model net.onnx gives the clean accuracy of the logits onnxruntime computes', async () => {
    const file = path.join(fixtures, 'mnist_pool_norm.onnx');
    const result = await advcorrect('eval', '--model', file, '--dataset', 'mnist', '--n', '200', '--attack', 'fgsm', '--eps', '0.1', '--json');
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { clean: { accuracy: number; correct: number } };
    const test = takeFirst(await loadDataset('mnist', 'test'), 200);
    const reference = await runOrt(file, test);
    let right = 0;
    for (let i = 0; i < test.count; i++) {
      const row = Array.from(reference.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === test.labels[i]) right++;
    }
    assert.equal(report.clean.correct, right);
    assert.ok(right > 150, `only ${right}/200 right`);
  });

  it('correct --model net.onnx runs and writes model.onnx with the corrected weights, which onnxruntime agrees with', async () => {
    const file = path.join(fixtures, 'mnist_bn.onnx');
    const out = path.join(tmp, 'run');
    const result = await advcorrect(
      'correct', '--model', file, '--dataset', 'mnist', '--n-adv', '4', '--iterations', '3', '--rounds', '1', '--omega', '1', '--tau', '1', '--clean-size', '200',
      '--adv-candidates', '100', '--adv-steps', '10', '--no-eval', '--out', out, '--quiet', '--json',
    );
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as { adversarial: { correctBefore: number; correctAfter: number } };
    assert.ok(summary.adversarial.correctAfter > summary.adversarial.correctBefore, JSON.stringify(summary.adversarial));
    const base = await loadModel(file);
    const corrected = await loadModel(path.join(out, 'model'));
    const moved = maxAbsDiff(new ParameterView(base.model).read(), new ParameterView(corrected.model).read());
    assert.ok(moved > 0, 'the correction changed no weight');
    const exported = path.join(out, 'model.onnx');
    assert.ok(existsSync(exported), 'correct wrote no model.onnx for an ONNX input');
    assert.equal(JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')).outputs.onnx, 'model.onnx');
    const test = takeFirst(await loadDataset('mnist', 'test'), 64);
    const input = corrected.normalization ? normalize(test.images, corrected.normalization, 1) : test.images;
    const ours = predictLogits(corrected.model, input);
    assert.ok(maxAbsDiff(ours, await runOrt(exported, test)) < 1e-4);
    assert.ok(maxAbsDiff(ours, await runOrt(file, test)) > 1e-4, 'the exported file still holds the old weights');
  });

  it("correct on the authors' CNNLight gives the same run through ONNX as through the .npz", async function () {
    const npz = path.resolve(packageRoot, '..', 'shared', 'models', 'mnist_ConvNetLight_norm01.npz');
    if (!existsSync(npz)) {
      console.log(`skipped: ${npz} is absent`);
      this.skip();
    }
    const args = ['--dataset', 'mnist', '--n-adv', '4', '--iterations', '3', '--tau', '1', '--clean-size', '200', '--adv-candidates', '100', '--adv-steps', '10', '--no-eval', '--quiet', '--json'];
    type Run = { distance: number; adversarial: unknown; iterations: Array<{ violation: number; cleanLoss: number; distance: number; cutsTotal: number }> };
    const viaOnnx = await advcorrect('correct', '--model', path.join(fixtures, 'mnist_cnnlight.onnx'), ...args, '--out', path.join(tmp, 'onnx'));
    const viaNpz = await advcorrect('correct', '--model', npz, '--arch', 'cnnlight', ...args, '--out', path.join(tmp, 'npz'));
    assert.equal(viaOnnx.code, 0, viaOnnx.stderr);
    assert.equal(viaNpz.code, 0, viaNpz.stderr);
    const a = JSON.parse(viaOnnx.stdout) as Run;
    const b = JSON.parse(viaNpz.stdout) as Run;
    const trace = (r: Run): number[][] => r.iterations.map((i) => [i.violation, i.cleanLoss, i.distance, i.cutsTotal]);
    assert.ok(a.distance > 0, 'the run chose the base model');
    assert.deepEqual(trace(a), trace(b));
    assert.deepEqual(a.adversarial, b.adversarial);
    assert.equal(a.distance, b.distance);
  });
});

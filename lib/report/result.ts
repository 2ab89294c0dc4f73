/**
 * result.json: the document a correction run leaves in its output directory. It is the
 * correction result plus the run's settings, the backend and the test metrics before and after.
 */
import path from 'node:path';
import { writeFileAtomic } from '../data/files.js';
import type { CorrectionResult } from '../correction/types.js';

/** Test metrics of one model. */
export interface TestMetrics {
  clean: { accuracy: number };
  fgsm: { eps: number; accuracy: number };
  pgd: { eps: number; steps: number; accuracy: number; stepSize?: number; n?: number };
}

/** Accuracy under an attack at several ε, before and after. */
export interface RobustnessSweep {
  attack: 'fgsm' | 'pgd';
  points: Array<{ eps: number; before: number; after: number }>;
}

/** The adversarial examples as 8-bit pixels, for the report's picture grid. */
export interface ExampleImages {
  height: number;
  width: number;
  channels: number;
  items: Array<{ label: number; before: number; after: number; round: number; pixels: number[] }>;
}

export interface ResultDocument extends CorrectionResult {
  format: 'advcorrect-result';
  formatVersion: 1;
  createdAt: string;
  /** Everything needed to repeat the run (model path, arch, dataset, CLI options, evaluation settings). */
  settings: Record<string, unknown>;
  backend: string;
  /** Test-set evaluation: which split, how many images, PGD subset size. */
  evaluation: { split: string; n: number; pgdN: number; clip: boolean; labels: 'true' | 'pred' };
  before: TestMetrics;
  after: TestMetrics;
  sweep?: RobustnessSweep;
  examples?: ExampleImages;
  /** Paths of the outputs, relative to the output directory. */
  outputs: { model: string; npz?: string; report: string };
}

/** Quantises NHWC [0, 1] images to 0–255 integers, one array per image (at most `limit` images). */
export function quantiseImages(images: Float32Array, count: number, size: number, limit = 100): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < Math.min(count, limit); i++) {
    const pixels = new Array<number>(size);
    for (let k = 0; k < size; k++) pixels[k] = Math.round(Math.min(1, Math.max(0, images[i * size + k]!)) * 255);
    out.push(pixels);
  }
  return out;
}

/** JSON with non-finite numbers as null (JSON cannot hold them). */
export function resultToJson(result: ResultDocument): string {
  return `${JSON.stringify(result, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
}

/** Writes `<dir>/result.json` atomically and returns its path. */
export async function writeResult(dir: string, result: ResultDocument): Promise<string> {
  const file = path.join(dir, 'result.json');
  await writeFileAtomic(file, resultToJson(result));
  return file;
}

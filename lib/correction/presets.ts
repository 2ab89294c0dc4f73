/**
 * Data-set presets of a correction run: the settings that `advcorrect correct --dataset NAME` uses
 * in place of the generic (MNIST) defaults of options.ts, for every flag the user does not give.
 * docs/results-cifar10.md measures why each CIFAR-10 value is what it is.
 */
import type { CorrectionOptionsInput } from './options.js';

/** Which training images may give X̃ (see CorrectionRunSettings.advFrom in lib/cli/correct.ts). */
export type AdvSource = 'all' | 'correct';
export const ADV_SOURCES: readonly AdvSource[] = ['all', 'correct'];

/** A data set's defaults: correction options and the run settings around them (X̃ source, evaluation). */
export interface DatasetPreset {
  /** Merged over DEFAULT_CORRECTION_OPTIONS (only the fields given here change). */
  options: CorrectionOptionsInput;
  /** Training images attacked per round to pick X̃ from. */
  advCandidates: number;
  advFrom: AdvSource;
  /** Test evaluation: ε (pixel units), PGD steps and step size, FGSM ε sweep, image counts. */
  evalEps: number;
  pgdSteps: number;
  pgdStepSize: number;
  sweep: number[];
  evalN: number;
  pgdN: number;
}

/**
 * CIFAR-10 (the authors' ResNet8, inputs normalised per channel inside the loaded model's pipeline;
 * every ε here is in pixel units [0, 1] and converted per channel by the attacks).
 * - X̃ at ε = 2/255 (the ε of the target), PGD-10 with step ε/4: at ε = 0.1 (the MNIST default,
 *   25.5/255) the images are far outside any threat model one evaluates on CIFAR-10.
 * - X̃ only from images the model classifies correctly clean: the most violated PGD examples of all
 *   candidates are mostly images it gets wrong anyway, whose "correction" is memorisation.
 * - ω = 1: the answer is the loss-feasible point with the least violation.
 * - A smaller clean subset (the clean-loss passes dominate the run time), fewer iterations per round
 *   and more rounds (new X̃ against the corrected model each round).
 */
export const CIFAR10_PRESET: Readonly<DatasetPreset> = Object.freeze({
  options: Object.freeze({
    // The answer is the least-violation loss-feasible point of the front (what was measured; ω < 1
    // picks points nearer w₀ along the front, with less robustness and less clean cost).
    omega: 1,
    cleanSize: 500,
    maxIterations: 8,
    rounds: 3,
    attack: Object.freeze({ eps: 2 / 255, steps: 10, stepSize: 0.5 / 255, randomStart: true, restarts: 1 }),
  }) as CorrectionOptionsInput,
  advCandidates: 200,
  advFrom: 'correct',
  evalEps: 2 / 255,
  pgdSteps: 20,
  pgdStepSize: 0.5 / 255,
  sweep: [1 / 255, 2 / 255, 4 / 255, 8 / 255],
  evalN: 1000,
  pgdN: 200,
}) as Readonly<DatasetPreset>;

/** Presets by data set name; data sets without one use the generic defaults. */
export const DATASET_PRESETS: Readonly<Record<string, Readonly<DatasetPreset>>> = Object.freeze({ cifar10: CIFAR10_PRESET });

/**
 * Which cut pool the loop uses (CorrectionOptions.rows): stored rows (CutPool) or rows kept as
 * factors (FactoredCutPool). 'auto' picks factors when the stored rows the run may keep would
 * take more than a quarter of the pool memory limit (lib/qp/memory.ts) and the factored layout
 * covers most parameters (Dense kernels); otherwise the rows are stored.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { factoredLayout, type FactoredLayout } from '../models/factored-rows.js';
import type { ParameterView } from '../models/parameters.js';
import { poolMemoryLimit } from '../qp/memory.js';
import type { CorrectionOptions } from './options.js';

export interface RowPath {
  kind: 'stored' | 'factored';
  /** Set for 'factored'. */
  layout?: FactoredLayout;
  /** Bytes the stored rows could take: at most maxCuts rows, each of n float32 values. */
  storedEstimateBytes: number;
  reason: string;
}

/** Rows the run may hold at once: the cuts of every iteration of every round, at most maxCuts. */
export function expectedRows(options: Pick<CorrectionOptions, 'maxCuts' | 'maxIterations' | 'rounds' | 'cutClasses'>, adversarial: number, numClasses: number): number {
  const perPoint = adversarial * (options.cutClasses === 'all' ? numClasses - 1 : 1) + 1;
  return Math.min(options.maxCuts, perPoint * options.maxIterations * options.rounds);
}

export function chooseRowPath(
  options: Pick<CorrectionOptions, 'rows' | 'maxCuts' | 'maxIterations' | 'rounds' | 'cutClasses' | 'solver'>,
  model: LayersModel,
  view: ParameterView,
  adversarial: number,
  numClasses: number,
  limitBytes = poolMemoryLimit(),
): RowPath {
  const storedEstimateBytes = 4 * view.size * expectedRows(options, adversarial, numClasses);
  if (options.rows === 'factored' && options.solver !== 'dual') {
    throw new RangeError(`options.rows 'factored' needs solver 'dual' (the factored cut pool has no ADMM), got solver '${options.solver}'`);
  }
  if (options.rows === 'stored') return { kind: 'stored', storedEstimateBytes, reason: 'rows: stored' };
  const layout = factoredLayout(model, view);
  if (options.rows === 'factored') return { kind: 'factored', layout, storedEstimateBytes, reason: 'rows: factored' };
  const covered = view.size - layout.restSize;
  if (options.solver !== 'dual') return { kind: 'stored', storedEstimateBytes, reason: `auto: the ${options.solver} solver needs stored rows` };
  if (covered * 2 < view.size) return { kind: 'stored', storedEstimateBytes, reason: `auto: Dense kernels hold only ${covered} of ${view.size} parameters` };
  if (storedEstimateBytes * 4 <= limitBytes) {
    return { kind: 'stored', storedEstimateBytes, reason: `auto: stored rows take at most ${storedEstimateBytes} bytes, within a quarter of the limit ${limitBytes}` };
  }
  return { kind: 'factored', layout, storedEstimateBytes, reason: `auto: stored rows could take ${storedEstimateBytes} bytes, more than a quarter of the limit ${limitBytes}` };
}

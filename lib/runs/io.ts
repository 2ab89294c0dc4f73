/** How a run talks to its caller: log lines, progress hooks, Ctrl-C, the before-metrics cache. */
import type { BackendRequest } from '../backend/index.js';
import type { CorrectionProgress, CorrectionResult } from '../correction/types.js';
import type { CorrectionOutput } from '../correction/correct.js';
import type { ImageDataset } from '../data/datasets.js';
import type { LoadedModel } from '../models/io.js';
import type { TestEvaluation } from './evaluation.js';

export interface RunIo {
  /** The CLI prints result.json on stdout (nothing else goes there). */
  json?: boolean;
  /** No log lines on stderr. */
  quiet: boolean;
  backend?: BackendRequest;
  /** Continue the checkpointed run in settings.out (correct only). */
  resume: boolean;
  /** Aborts the run (in addition to Ctrl-C, which the run turns into an abort). */
  signal?: AbortSignal;
  /** Reuse "before" metrics across runs with the same model and evaluation settings (bench/results.ts, demo). */
  beforeCache?: Map<string, TestEvaluation>;
  /** Log lines (default: stderr unless quiet). */
  log?: (line: string) => void;
  /** Progress of an evaluation ('before' or 'after'). */
  evaluationProgress?: (what: string) => (info: { stage: string; done: number; total: number }) => void;
  /** Progress of the correction loop (`total` = iterations at most). */
  correctionProgress?: (total: number) => { update(e: CorrectionProgress): void; finish(result: CorrectionResult): void };
  /** Progress of a baseline's work (epochs, search steps). */
  baselineProgress?: (line: string) => void;
  /** Called with the correction's output (its front with weights) before the corrected model is evaluated and saved (bench/results.ts). */
  onOutput?: (output: CorrectionOutput, loaded: LoadedModel, test: ImageDataset) => Promise<void>;
}

export function say(io: RunIo, line: string): void {
  if (io.quiet) return;
  if (io.log) io.log(line);
  else process.stderr.write(`${line}\n`);
}

/** An abort signal for a run: Ctrl-C (SIGINT) or the caller's signal; release() removes the handler. */
export function runSignal(io: RunIo): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSigint = (): void => controller.abort(new Error('interrupted (SIGINT)'));
  process.once('SIGINT', onSigint);
  const onAbort = (): void => controller.abort(io.signal?.reason);
  if (io.signal?.aborted) onAbort();
  else io.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    release: () => {
      process.removeListener('SIGINT', onSigint);
      io.signal?.removeEventListener('abort', onAbort);
    },
  };
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : 'n/a';
}

/** One line of an evaluation: worst case first, then clean and each attack. */
export function headline(e: TestEvaluation): string {
  const m = e.metrics;
  const parts = [`${m.worstCase?.label ?? 'worst case'} ${pct(m.worstCase?.accuracy ?? Number.NaN)}`, `clean ${pct(m.clean.accuracy)}`];
  for (const a of m.attacks ?? []) parts.push(`${a.label} ${pct(a.accuracy)}`);
  return parts.join(', ');
}

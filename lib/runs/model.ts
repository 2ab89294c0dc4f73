/** The input model of a run: loaded the same way for `correct` and every baseline. */
import type { ArchName } from '../models/architectures.js';
import { loadModel, type LoadedModel } from '../models/io.js';
import { say, type RunIo } from './io.js';

/** How a run names its input model (saved in run.json / result.json settings). */
export interface ModelSettings {
  model: string;
  /** Architecture of an .npz model. */
  arch?: ArchName;
  /** BatchNorm statistics of a ResNet8 .npz (default: *_bn_stats.npz beside it). */
  bnStats?: string;
  /** ONNX models: the network takes pixels in [0, inputScale]. */
  inputScale?: number;
}

/** Loads the run's input model and passes the loader's notices on to the user. */
export async function loadRunModel(s: ModelSettings, io: RunIo): Promise<LoadedModel> {
  const loaded = await loadModel(s.model, {
    ...(s.arch ? { arch: s.arch } : {}),
    ...(s.bnStats ? { bnStats: s.bnStats } : {}),
    ...(s.inputScale !== undefined ? { inputScale: s.inputScale } : {}),
  });
  for (const notice of loaded.notices ?? []) say(io, `note: ${notice}`);
  return loaded;
}

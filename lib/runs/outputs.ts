/** The files a run leaves in its output directory, each written atomically. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { ArchName } from '../models/architectures.js';
import { exportNpz, saveModel, type LoadedModel } from '../models/io.js';
import { replaceDirAtomic } from '../correction/checkpoint.js';
import { writeReport, writeResult, type RunDocument } from '../report/index.js';

/** Writes `model/` (tfjs) and, when the input was an .npz, `model.npz`; returns the outputs entry of result.json. */
export async function writeModelOutputs(out: string, model: LayersModel, loaded: LoadedModel, arch: ArchName | undefined): Promise<{ model: string; npz?: string; report: string }> {
  await replaceDirAtomic(path.join(out, 'model'), (tmp) => saveModel(model, tmp, { ...(arch ? { arch } : {}), ...(loaded.normalization ? { normalization: loaded.normalization } : {}) }));
  let npz: string | undefined;
  if (loaded.source === 'npz' && arch) {
    npz = 'model.npz';
    const tmp = path.join(out, `.model.npz.${process.pid}.tmp`);
    await exportNpz(model, arch, tmp);
    await fs.rename(tmp, path.join(out, npz));
  }
  return { model: 'model/model.json', ...(npz ? { npz } : {}), report: 'report.html' };
}

/** Writes result.json and report.html. */
export async function writeRunDocument(out: string, doc: RunDocument): Promise<void> {
  await writeResult(out, doc);
  await writeReport(out, doc);
}

import path from 'node:path';
import { writeFileAtomic } from '../util/files.js';
import { renderReport } from './html.js';
import type { RunDocument } from './result.js';

/** Renders and writes `<dir>/report.html` atomically; returns its path. */
export async function writeReport(dir: string, result: RunDocument): Promise<string> {
  const file = path.join(dir, 'report.html');
  await writeFileAtomic(file, renderReport(result));
  return file;
}

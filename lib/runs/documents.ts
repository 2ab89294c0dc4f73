/** Reading the result.json of a run directory. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { RunDocument } from '../report/index.js';

/**
 * Reads `<dir>/result.json`; a RangeError naming the flag when the directory holds none (a
 * mistake in the command line, caught before anything is written).
 */
export async function readRunDocument(dir: string, flag: string): Promise<RunDocument> {
  const file = path.join(dir, 'result.json');
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    throw new RangeError(`${flag}: ${dir} holds no result.json`);
  }
  let doc: RunDocument;
  try {
    doc = JSON.parse(text) as RunDocument;
  } catch {
    throw new RangeError(`${flag}: ${file} is not JSON`);
  }
  if (doc === null || typeof doc !== 'object' || doc.format !== 'advcorrect-result') throw new RangeError(`${flag}: ${file} is not an advcorrect result`);
  return doc;
}

/** The time a run spent on its method (drawing X̃ and correcting / training), without evaluation. */
export function methodTimeMs(doc: RunDocument): number {
  if (typeof doc.methodTimeMs === 'number') return doc.methodTimeMs;
  return 'totalTimeMs' in doc && typeof doc.totalTimeMs === 'number' ? doc.totalTimeMs : Number.NaN;
}

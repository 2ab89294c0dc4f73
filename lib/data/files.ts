import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';

/** Writes a file by writing a temporary sibling and renaming it over the target. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(temp, data);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw new AdvcorrectError('ERR_IO', `cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** MD5 of a file, streamed. */
export function md5File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('md5');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', (error) => reject(new AdvcorrectError('ERR_IO', `cannot read ${file}: ${error.message}`, { cause: error })))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

export function md5Bytes(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

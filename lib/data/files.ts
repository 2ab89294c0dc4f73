import { mkdir, open, rename, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { AdvcorrectError } from '../errors.js';

/**
 * Writes a file atomically: a temporary sibling, fsync, rename over the target, so a reader (or a
 * crash) sees the old file or the new one, never a half-written one.
 */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
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

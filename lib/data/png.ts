import { inflate, inflateSync } from 'node:zlib';
import { promisify } from 'node:util';
import { AdvcorrectError } from '../errors.js';

const inflateAsync = promisify(inflate);

/** A decoded 8-bit PNG: `data` holds height rows of width·channels bytes, no filter bytes. */
export interface DecodedPng {
  width: number;
  height: number;
  /** 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA. */
  channels: number;
  data: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS_OF_COLOR_TYPE: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

interface PngHeader {
  width: number;
  height: number;
  channels: number;
  idat: Buffer;
}

function parseChunks(file: Buffer, what: string): PngHeader {
  const fail = (message: string): never => {
    throw new AdvcorrectError('ERR_DATA', `${what}: ${message}`);
  };
  if (file.length < 8 || SIGNATURE.some((byte, i) => file[i] !== byte)) fail('not a PNG file (bad signature)');
  let offset = 8;
  let header: Omit<PngHeader, 'idat'> | undefined;
  const idat: Buffer[] = [];
  let ended = false;
  while (offset + 8 <= file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    const start = offset + 8;
    if (start + length + 4 > file.length) fail(`truncated ${type} chunk`);
    const body = file.subarray(start, start + length);
    if (type === 'IHDR') {
      const width = body.readUInt32BE(0);
      const height = body.readUInt32BE(4);
      const bitDepth = body[8];
      const colorType = body[9];
      const interlace = body[12];
      const channels = CHANNELS_OF_COLOR_TYPE[colorType];
      if (bitDepth !== 8 || channels === undefined) {
        fail(`only 8-bit grey/RGB/RGBA PNGs are supported (bit depth ${bitDepth}, colour type ${colorType})`);
      }
      if (interlace !== 0) fail('interlaced PNGs are not supported');
      header = { width, height, channels };
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
    offset = start + length + 4; // skip CRC
  }
  if (!header) return fail('no IHDR chunk');
  if (!ended) fail('truncated (no IEND chunk)');
  return { ...header, idat: Buffer.concat(idat) };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/** Reverses the five PNG scanline filters (none, sub, up, average, Paeth). */
function unfilter(raw: Uint8Array, width: number, height: number, bpp: number, what: string): Uint8Array {
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) {
    throw new AdvcorrectError(
      'ERR_DATA',
      `${what}: image data has ${raw.length} bytes, expected ${height * (stride + 1)} for ${width}×${height}×${bpp}`,
    );
  }
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const prev = dst - stride; // only read when y > 0
    switch (filter) {
      case 0:
        out.set(raw.subarray(src, src + stride), dst);
        break;
      case 1:
        for (let x = 0; x < stride; x++) {
          const left = x >= bpp ? out[dst + x - bpp] : 0;
          out[dst + x] = (raw[src + x] + left) & 0xff;
        }
        break;
      case 2:
        for (let x = 0; x < stride; x++) {
          const up = y > 0 ? out[prev + x] : 0;
          out[dst + x] = (raw[src + x] + up) & 0xff;
        }
        break;
      case 3:
        for (let x = 0; x < stride; x++) {
          const left = x >= bpp ? out[dst + x - bpp] : 0;
          const up = y > 0 ? out[prev + x] : 0;
          out[dst + x] = (raw[src + x] + ((left + up) >> 1)) & 0xff;
        }
        break;
      case 4:
        for (let x = 0; x < stride; x++) {
          const left = x >= bpp ? out[dst + x - bpp] : 0;
          const up = y > 0 ? out[prev + x] : 0;
          const upLeft = x >= bpp && y > 0 ? out[prev + x - bpp] : 0;
          out[dst + x] = (raw[src + x] + paeth(left, up, upLeft)) & 0xff;
        }
        break;
      default:
        throw new AdvcorrectError('ERR_DATA', `${what}: unknown PNG filter type ${filter} on row ${y}`);
    }
  }
  return out;
}

function inflateError(what: string, error: unknown): AdvcorrectError {
  return new AdvcorrectError('ERR_DATA', `${what}: corrupt PNG image data (${(error as Error).message})`, { cause: error });
}

/** Decodes an 8-bit, non-interlaced PNG (grey, grey+alpha, RGB or RGBA). */
export function decodePng(file: Buffer, what = 'PNG'): DecodedPng {
  const { width, height, channels, idat } = parseChunks(file, what);
  let raw: Buffer;
  try {
    raw = inflateSync(idat);
  } catch (error) {
    throw inflateError(what, error);
  }
  return { width, height, channels, data: unfilter(raw, width, height, channels, what) };
}

/** Like {@link decodePng}, but inflates on the libuv thread pool. */
export async function decodePngAsync(file: Buffer, what = 'PNG'): Promise<DecodedPng> {
  const { width, height, channels, idat } = parseChunks(file, what);
  let raw: Buffer;
  try {
    raw = await inflateAsync(idat);
  } catch (error) {
    throw inflateError(what, error);
  }
  return { width, height, channels, data: unfilter(raw, width, height, channels, what) };
}

export * from './architectures.js';
export * from './io.js';
export { readNpz, writeNpz, parseNpz, encodeNpz, parseNpy, encodeNpy, unzip, type NpyArray, type NpyDtype } from './npz.js';

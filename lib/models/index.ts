// Barrel of lib/models. Other engineers' modules are added here on request.
export * from './architectures.js';
export * from './io.js';
export { readNpz, writeNpz, parseNpz, encodeNpz, parseNpy, encodeNpy, unzip, checkFiniteArray, NPZ_MAX_BYTES, type NpyArray, type NpyDtype } from './npz.js';
export * from './parameters.js';
export * from './gradients.js';
export * from './train.js';
export { exportOnnx, importOnnx, decodeModel as decodeOnnxModel, ONNX_OPERATORS, ONNX_OPSETS, type ImportOnnxOptions, type OnnxSource } from './onnx/index.js';

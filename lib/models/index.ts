// Barrel of lib/models. Other engineers' modules are added here on request.
export * from './architectures.js';
export * from './io.js';
export { readNpz, writeNpz, parseNpz, encodeNpz, parseNpy, encodeNpy, unzip, checkFiniteArray, NPZ_MAX_BYTES, type NpyArray, type NpyDtype } from './npz.js';
export * from './parameters.js';
// The gradient engine (graph compiler, forward pass, per-example rows) and inference/loss helpers.
// Only these names are public; the helpers the files share among themselves stay internal.
export { compileModel, compileInputs, tfPadding, type StepKind, type ElementwiseKind, type Conv2DSpec, type GraphStep, type ModelGraph } from './graph.js';
export { forwardGraph, convOp, bnAffine, type WeightOverrides, type ForwardTrace } from './forward.js';
export type { BatchOptions } from './batches.js';
export { marginRows, forEachMarginRow, type MarginRowOptions, type MarginRows, type MarginRowVisit } from './rows.js';
export { predictLogits, predictLogitsAsync, margins, marginsFromLogits } from './inference.js';
export { cleanLoss, cleanLossGradient, crossEntropyFromLogits } from './loss.js';
export * from './train.js';
export { exportOnnx, importOnnx, decodeModel as decodeOnnxModel, ONNX_OPERATORS, ONNX_OPSETS, type ImportOnnxOptions, type OnnxSource } from './onnx/index.js';

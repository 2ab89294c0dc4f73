export { importOnnx, ONNX_OPERATORS, ONNX_OPSETS, type ImportOnnxOptions, type OnnxImport, type OnnxSource, type OnnxWeightBinding } from './import.js';
export { exportOnnx, encodeWithInitializers } from './export.js';
export { decodeModel, type OnnxModel, type OnnxGraph, type OnnxNode, type OnnxTensor } from './proto.js';

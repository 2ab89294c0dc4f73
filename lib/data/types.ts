// The plain types of the data layer, on their own so that readers (cifar.ts) and the loaders
// (datasets.ts, which reads through fetch.ts and cifar.ts) share them without importing each other.

/**
 * A labelled image set held in memory. Images are NHWC float32 in [0, 1] (raw pixel space; any
 * mean/std normalisation belongs to the model and is applied by `normalize` in datasets.ts).
 * Treat the arrays as read-only: helpers such as `subset` copy, but `takeFirst(ds, ds.count)` may share.
 */
export interface ImageDataset {
  name: string;
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}

export type DatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';
export type Split = 'train' | 'test';

/** Per-channel mean/std normalisation of a model's input space: x' = (x − mean[c]) / std[c]. */
export interface Normalization {
  mean: number[];
  std: number[];
}

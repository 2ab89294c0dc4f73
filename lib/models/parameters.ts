import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';

/** One trainable tensor inside a {@link ParameterView}'s flat vector. */
export interface ParameterEntry {
  /** Name of the model layer that owns the tensor (e.g. `conv1`). */
  readonly layer: string;
  /** Short name of the tensor within its layer (`kernel`, `bias`, `gamma`, `beta`). */
  readonly name: string;
  /** Shape in tfjs layout (Dense `[in, out]`, Conv2D `[kh, kw, in, out]`). */
  readonly shape: number[];
  /** First index of the tensor in the flat vector. */
  readonly offset: number;
  /** Number of scalars (product of `shape`). */
  readonly size: number;
}

/** Internal: the layer variable behind an entry. */
interface LayerVariableLike {
  readonly name: string;
  readonly originalName?: string;
  readonly shape: number[];
  read(): tf.Tensor;
  write(value: tf.Tensor): unknown;
}

function shortName(variable: LayerVariableLike): string {
  const full = variable.originalName ?? variable.name;
  const slash = full.lastIndexOf('/');
  const tail = slash >= 0 ? full.slice(slash + 1) : full;
  return tail.replace(/_\d+$/, '');
}

/**
 * A flat float64 view of a model's trainable parameters: all of them, or those of chosen layers.
 *
 * Order (stable, documented): layers in `model.layers` order (the topological order tfjs keeps);
 * within a layer, its trainable weights in `layer.trainableWeights` order — `kernel` before `bias`
 * for Dense/Conv2D, `gamma` before `beta` for BatchNormalization; each tensor row-major in tfjs
 * layout. Layers with no trainable weights (or `trainable = false`) contribute nothing.
 */
export class ParameterView {
  readonly size: number;
  readonly entries: ReadonlyArray<ParameterEntry>;
  /** The layer names this view covers, in model order. */
  readonly layers: ReadonlyArray<string>;
  private readonly variables: LayerVariableLike[];

  constructor(
    readonly model: LayersModel,
    layers?: string[],
  ) {
    if (model === null || typeof model !== 'object' || !Array.isArray((model as LayersModel).layers)) {
      throw new TypeError('model must be a tf.LayersModel');
    }
    if (layers !== undefined) {
      if (!Array.isArray(layers) || layers.some((name) => typeof name !== 'string')) {
        throw new TypeError('layers must be an array of layer names');
      }
      const known = new Set(model.layers.map((layer) => layer.name));
      const unknown = layers.filter((name) => !known.has(name));
      if (unknown.length > 0) {
        throw new RangeError(
          `unknown layer${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')}; ` +
            `the model has ${model.layers.map((layer) => layer.name).join(', ')}`,
        );
      }
      const withWeights = new Set(model.layers.filter((l) => l.trainableWeights.length > 0).map((l) => l.name));
      const empty = layers.filter((name) => !withWeights.has(name));
      if (empty.length > 0) {
        throw new RangeError(`layer${empty.length > 1 ? 's' : ''} ${empty.map((n) => `'${n}'`).join(', ')} ha${empty.length > 1 ? 've' : 's'} no trainable parameters`);
      }
    }
    const chosen = layers === undefined ? undefined : new Set(layers);
    const entries: ParameterEntry[] = [];
    const variables: LayerVariableLike[] = [];
    const layerNames: string[] = [];
    let offset = 0;
    for (const layer of model.layers) {
      if (chosen && !chosen.has(layer.name)) continue;
      const weights = layer.trainableWeights as unknown as LayerVariableLike[];
      if (weights.length === 0) continue;
      layerNames.push(layer.name);
      for (const variable of weights) {
        const shape = [...variable.shape];
        const size = shape.reduce((a, b) => a * b, 1);
        entries.push(Object.freeze({ layer: layer.name, name: shortName(variable), shape, offset, size }));
        variables.push(variable);
        offset += size;
      }
    }
    this.size = offset;
    this.entries = Object.freeze(entries);
    this.layers = Object.freeze(layerNames);
    this.variables = variables;
  }

  /** The entry of `layer`'s tensor `name`, or undefined. */
  entry(layer: string, name: string): ParameterEntry | undefined {
    return this.entries.find((e) => e.layer === layer && e.name === name);
  }

  /** Copies the current parameter values into a new Float64Array of length `size`. */
  read(): Float64Array {
    const out = new Float64Array(this.size);
    this.entries.forEach((entry, k) => {
      const values = this.variables[k].read().dataSync();
      for (let i = 0; i < entry.size; i++) out[entry.offset + i] = values[i];
    });
    return out;
  }

  /** Writes `w` (length `size`) into the model's variables (rounded to float32). */
  write(w: Float64Array): void {
    if (!(w instanceof Float64Array)) throw new TypeError('w must be a Float64Array');
    if (w.length !== this.size) throw new RangeError(`w has length ${w.length}, expected ${this.size}`);
    this.entries.forEach((entry, k) => {
      const values = new Float32Array(entry.size);
      for (let i = 0; i < entry.size; i++) values[i] = w[entry.offset + i];
      const tensor = tf.tensor(values, entry.shape, 'float32');
      this.variables[k].write(tensor);
      tensor.dispose();
    });
  }
}

/**
 * Imported before tfjs-layers (ES modules evaluate imports in order): production mode
 * silences tfjs' console advice ("install tfjs-node", printed on the first tensor that
 * tfjs-layers makes at import time) and skips debug-only checks.
 */
import * as tf from '@tensorflow/tfjs-core';

tf.enableProdMode();

/**
 * The QPS interchange in one import, for callers outside lib/qp that import `qp/qps.js`
 * (lib/cli/qp.ts, bench/maros.ts, tests): it re-exports the reader (qps-reader.ts), the writer
 * (qps-writer.ts), the name choice (names.ts) and the sparse helpers the writers share
 * (sparse.ts). Code inside lib/qp imports those modules directly.
 */
export { readQps, readQpsFile, QPS_INFINITY, QPS_MAX_BYTES, type ReadQpsOptions } from './qps-reader.js';
export { writeQps, formatNumber } from './qps-writer.js';
export { chooseNames, genericNames } from './names.js';
export { checkProblemShape, transposeCompressed } from './sparse.js';

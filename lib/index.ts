export { AdvcorrectError, type AdvcorrectErrorCode } from './errors.js';
export * from './qp/types.js';

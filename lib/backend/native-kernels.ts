/** The 'native' backend: tfjs kernels backed by the C++ addon (work in progress). */
import { AdvcorrectError } from '../errors.js';

export async function registerNativeBackend(): Promise<void> {
  throw new AdvcorrectError('ERR_BACKEND', "The 'native' backend is not available yet");
}

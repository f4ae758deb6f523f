/** Where long work over an image's layers stands: the layer at hand (0 = base) and bytes so far. */
export type { Progress } from './generated/operations.js'

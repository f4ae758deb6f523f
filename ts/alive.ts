/**
 * Keeping Node running for native work it cannot see. A server, or a call waiting on one, runs
 * on native threads that hold nothing on the event loop: without a handle of its own, Node would
 * exit under it (a call to a helper in another process was seen to let the loop empty mid-call).
 */

/** Keeps Node running, as a `net.Server` would, until the returned function is called. */
export function keepAlive(): () => void {
  const handle = setInterval(() => {}, 1 << 30)
  return () => clearInterval(handle)
}

/** Keeps Node running until `work` settles. */
export async function whileAlive<T>(work: Promise<T>): Promise<T> {
  const release = keepAlive()
  try {
    return await work
  } finally {
    release()
  }
}

/**
 * Typed errors. The Rust core gives every failure a stable code (`crates/cstor-core/src/error.rs`);
 * the binding prefixes the message with it (`[ENOIMAGE] no image matches "x"`), and this module
 * turns that into an instance of the matching class, with `code` set. Users match on `code` or
 * `instanceof`; the CLI maps any `CstorError` to exit code 1.
 */

export type ErrorCode =
  | 'ENOIMAGE'
  | 'ENOLAYER'
  | 'EAMBIGUOUS'
  | 'EUNSUPPORTED'
  | 'ECORRUPT'
  | 'EINVAL'
  | 'ENOSTORE'
  | 'ECONFIG'
  | 'EACCES'
  | 'ENOENT'
  | 'EIO'
  | 'ENOSPC'
  | 'EREMOTE'
  | 'EBUSY'
  | 'EISDIR'
  | 'ENOTDIR'
  | 'ELOOP'
  | 'ENODATA'
  | 'EXDEV'
  | 'EINTERNAL'

export class CstorError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** No image matches the reference. */
export class NoImageError extends CstorError {}
/** No layer matches the ID, prefix, name or link. */
export class NoLayerError extends CstorError {}
/** A short name or ID prefix matches several images or layers. */
export class AmbiguousError extends CstorError {}
/** The store uses something cstor does not read, such as a graph driver other than overlay. */
export class UnsupportedError extends CstorError {}
/** The store's metadata or files are not what containers/storage writes. */
export class CorruptError extends CstorError {}
/** An argument is malformed. */
export class InvalidArgumentError extends CstorError {}
/** There is no store at the given root. */
export class NoStoreError extends CstorError {}
/** `storage.conf` could not be read or parsed. */
export class ConfigError extends CstorError {}
/**
 * The operating system refused or failed an operation (permission, missing file, I/O), or a path
 * in an image's filesystem (`image.fs`) cannot be read as asked; those errors also carry the
 * `path` and `syscall` a `node:fs` error has.
 */
export class SystemError extends CstorError {
  /** For `image.fs` and `layer.fs` errors: the path as the caller gave it. */
  path?: string
  /** For `image.fs` and `layer.fs` errors: the `node:fs` call's name (`open`, `stat`, ...). */
  syscall?: string
}
/** A peer (a cstor JSON-RPC server, a registry) failed, or could not be reached. */
export class RemoteError extends CstorError {}
/** The image or layer is in use (by a container, another image, a child layer). */
export class InUseError extends CstorError {}
/** A bug in cstor: please report it. */
export class InternalError extends CstorError {}

const classes: Record<ErrorCode, new (code: ErrorCode, message: string, options?: { cause?: unknown }) => CstorError> = {
  ENOIMAGE: NoImageError,
  ENOLAYER: NoLayerError,
  EAMBIGUOUS: AmbiguousError,
  EUNSUPPORTED: UnsupportedError,
  ECORRUPT: CorruptError,
  EINVAL: InvalidArgumentError,
  ENOSTORE: NoStoreError,
  ECONFIG: ConfigError,
  EACCES: SystemError,
  ENOENT: SystemError,
  EIO: SystemError,
  ENOSPC: SystemError,
  EREMOTE: RemoteError,
  EBUSY: InUseError,
  EISDIR: SystemError,
  ENOTDIR: SystemError,
  ELOOP: SystemError,
  ENODATA: SystemError,
  EXDEV: SystemError,
  EINTERNAL: InternalError,
}

const CODED_MESSAGE = /^\[(E[A-Z]+)\] ([\s\S]*)$/

/** Node's own codes for a wrongly typed argument to one of its functions (a path, an fd). */
const NODE_ARGUMENT_CODES = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE'])

/**
 * The typed error for a failed Node system call (`fs.open` of an export's file, say): the
 * README promises a `CstorError` from every API call, not only from the native ones.
 */
function fromSystem(err: Error & { code?: unknown; syscall?: unknown }): CstorError | undefined {
  const code = String(err.code ?? '')
  if (NODE_ARGUMENT_CODES.has(code)) return new InvalidArgumentError('EINVAL', err.message, { cause: err })
  if (typeof err.syscall !== 'string' || !/^E[A-Z]+$/.test(code)) return undefined
  const ours: ErrorCode = code === 'ENOENT' || code === 'ENOSPC' ? code : code === 'EACCES' || code === 'EPERM' ? 'EACCES' : 'EIO'
  return new SystemError(ours, err.message, { cause: err })
}

/**
 * Converts an error thrown by the native binding, or by a Node system call the API makes, into
 * its typed class; others pass through.
 */
export function fromNative(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof CstorError) return err
  const match = CODED_MESSAGE.exec(err.message)
  if (!match || !(match[1] in classes)) {
    const system = fromSystem(err)
    if (system) return system
    // napi-rs rejects wrongly typed arguments itself, before the core runs, with a status
    // such as `StringExpected`, `ObjectExpected` or `InvalidArg`.
    const status = String((err as { code?: unknown }).code ?? '')
    if (status === 'InvalidArg' || status.endsWith('Expected')) {
      return new InvalidArgumentError('EINVAL', err.message, { cause: err })
    }
    return err
  }
  const code = match[1] as ErrorCode
  return new classes[code](code, match[2], { cause: err })
}

/**
 * Runs a native call, rethrowing its error as a typed one. Takes a function rather than a promise
 * because the binding rejects badly typed arguments by throwing synchronously.
 */
export async function call<T>(native: () => Promise<T>): Promise<T> {
  try {
    return await native()
  } catch (err) {
    throw fromNative(err)
  }
}

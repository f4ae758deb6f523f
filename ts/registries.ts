import type { Login, Logout, Registries } from './generated/operations.js'

/**
 * `registries()`'s options: `registriesConf`, a registries.conf to read instead of the user's or
 * the system's (podman's `--registries-conf`).
 */
export type RegistriesOptions = Registries

/**
 * The registry configuration pulls use, merged from registries.conf and its drop-ins as
 * containers/image merges them: `files` (read, in order), `registries` (`prefix`, `location`,
 * `insecure`, `blocked`, `mirrors`, `mirrorByDigestOnly`), `unqualifiedSearchRegistries`,
 * `shortNameMode`, `aliases` (each with the file that set it), `credentialHelpers`.
 */
export type { RegistriesConf, RegistryConfig, RegistryEndpoint, ShortNameAlias, ShortNameMode } from './generated/operations.js'

/**
 * `login()`'s options: `username` and `password` (required), and `authFile`, `certDir`,
 * `tlsVerify`, `registriesConf` as podman's flags of the same names.
 */
export type LoginOptions = Omit<Login, 'server'>

/** Where `login()` stored the credentials: `storedIn`, an auth file or `credential helper: NAME`. */
export type { LoginResult } from './generated/operations.js'

/** `logout()`'s options: `authFile`, `registriesConf`, as podman's flags. */
export type LogoutOptions = Omit<Logout, 'server'>

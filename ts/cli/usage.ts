/** Usage errors (exit code 2) and the help text. */

export class UsageError extends Error {}

/** Options every verb receives. */
export interface Flags {
  json: boolean
  /** `--quiet`: no progress bars. */
  quiet: boolean
  /** `-o FILE` of `layer export` and `image composefs`. */
  output?: string
  /** Verify CRCs on export (`--no-verify` turns it off). */
  verify: boolean
  /** Extraction: `--no-reflinks`, `--no-owners`, `--no-xattrs`, `--whiteouts FORM`. */
  reflinks: boolean
  owners: boolean
  xattrs: boolean
  whiteouts?: string
  /** TOCs: `--pretty` indents the JSON, `--digests` hashes file contents. */
  pretty: boolean
  digests: boolean
  /** `image composefs --dumpfile` (the dumpfile, not the EROFS) and `--algorithm sha256|sha512` (also `copy` to a new composefs repository). */
  dumpfile: boolean
  algorithm?: string
  /** `copy … composefs:REPO --hardlink`: objects hard-linked to the store's files. */
  hardlink: boolean
  /** `copy --compress gzip|zstd|none`. */
  compress?: string
  /** `serve --socket PATH`, and `--writable` to answer write methods too. */
  socket?: string
  writable: boolean
  /** `serve --socket-group GROUP`: share the socket with a group. */
  socketGroup?: string
  /** `serve --registry ADDR` and its `--tls-cert FILE`, `--tls-key FILE`, `--htpasswd FILE`. */
  registry?: string
  tlsCert?: string
  tlsKey?: string
  htpasswd?: string
  /** `copy --platform os/arch[/variant]`. */
  platform?: string
  /** `verify --image REF`: check one image instead of the whole store. */
  image?: string
  /** `verify --quick`: structure and metadata, no content read. */
  quick: boolean
  /** `pull`/`copy`/`login --tls-verify=false`: no TLS verification (and plain HTTP) for a registry; unset, registries.conf decides. */
  tlsVerify?: boolean
  /** `--registries-conf FILE`, `--authfile FILE`, `--cert-dir DIR`: as podman's (pull, copy, login, logout). */
  registriesConf?: string
  authFile?: string
  certDir?: string
  /** `pull`/`import --signature-policy FILE`: the policy.json to judge images by. */
  signaturePolicy?: string
  /** `login -u USER`, `-p PASSWORD` or `--password-stdin`. */
  username?: string
  password?: string
  passwordStdin: boolean
  /** `image ls -l` (long listing), `-R` (recursive). */
  long: boolean
  recursive: boolean
  /** `image find --name GLOB --type f|d|l`. */
  name?: string
  type?: string
}

/**
 * The registry options of `pull`, `copy` and `login`, as podman's flags set them; unset ones are
 * left out, so registries.conf, the environment and the user's files decide.
 */
export function registryOptions(flags: Flags): { registriesConf?: string; authFile?: string; certDir?: string; tlsVerify?: boolean } {
  const { registriesConf, authFile, certDir, tlsVerify } = flags
  return Object.fromEntries(Object.entries({ registriesConf, authFile, certDir, tlsVerify }).filter(([, value]) => value !== undefined))
}

export const HELP = `Usage: cstor [--root DIR] [--runroot DIR] [--json] <command> [args]

Read and write containers-storage (podman, buildah, skopeo, CRI-O) image stores directly.

Commands:
  image list                 List images (like podman images -a)
  image inspect <ref>        Show an image: record, manifest, config, platform, layers
  image layers <ref>         List an image's layers, top first
  image extract <ref> <dir> [--no-reflinks] [--no-owners] [--no-xattrs]
                             Write the image's merged filesystem (as podman image mount
                             shows it) into a new or empty directory
  image toc <ref> [--pretty] [--digests] [--whiteouts list]
                             Print the merged filesystem's table of contents as
                             eStargz-style JSON; list: also deleted paths and opaque dirs
  image cat <ref> <path>...  Print files of the image (read in place, no mount)
  image ls <ref> [<path>] [-l] [-R]
                             List a directory of the image (without <ref>: the images)
  image find <ref> [--name GLOB] [--type f|d|l]
                             List the image's paths whose name matches GLOB
  image diff <ref> [<base>]  What podman image diff prints: A/C/D paths against <base>,
                             or against the image's parent layer
  image analyze <ref>        Each layer's added/changed/removed files; wasted bytes and
                             efficiency as dive --ci computes them
  image composefs <ref> -o FILE [--dumpfile] [--algorithm sha256|sha512]
                             Write the image's composefs (EROFS) image or its dumpfile;
                             print its composefs ID
  layer list                 List layers
  layer inspect <id>         Show a layer's record, overlay link and lower chain
  layer export <id> [-o FILE] [--no-verify]
                             Write the layer's tar, rebuilt bit for bit from its tar-split
                             (stdout unless -o; refuses a terminal)
  layer ls <id>              List one layer's own entries, deletions marked
  layer toc <id> [--pretty] [--digests]
                             Print the layer tar's table of contents (eStargz-style JSON)
  layer extract <id> <dir> [--whiteouts overlay|aufs|apply] [--no-reflinks] ...
                             Write one layer's own content into a new or empty directory;
                             whiteouts as overlayfs stores them (default), as .wh. files
                             (aufs) or dropped (apply)
  copy <ref> <destination> [--compress gzip|zstd|none] [--tls-verify=BOOL] [--algorithm sha256|sha512] [--hardlink]
                             Copy an image to a registry (docker://HOST/REPO:TAG), a
                             docker-archive:FILE[:NAME] (podman save), an
                             oci-archive:FILE[:NAME], an OCI layout (oci:DIR[:NAME]) or a
                             composefs repository (composefs:REPO[:NAME])
  serve --socket PATH [--socket-group GROUP] [--writable]
                             Serve the store over JSON-RPC 2.0 on a Unix socket (mode 0600,
                             or 0660 for GROUP): every operation by name, layers as fds
                             (SCM_RIGHTS): ListImages, ExportLayer, StreamLayer, ImageToc,
                             ... (--writable: writes too); until Ctrl-C
  serve --registry ADDR [--tls-cert FILE --tls-key FILE] [--htpasswd FILE]
                             Serve the store as a read-only OCI registry (loopback unless
                             ADDR names another IP): docker pull ADDR/localhost/app:1 pulls
                             localhost/app:1; one access-log line per request on stdout
  verify [--image REF] [--quick]
                             Check the store (or one image) for damage: every layer's diff/
                             against its tar headers (mode, owner, mtime, links, xattrs) and
                             (unless --quick) its files against tar-split CRCs and its diff
                             digest, big data against its digests, parents, image layers,
                             overlay links; also unused layers and dangling links. Exit 0
                             clean, 1 damaged
  pull <source> [NAME] [--tls-verify=BOOL] [--signature-policy FILE]
                             Pull an image (oci:DIR[:REF], docker-archive:FILE[:REF],
                             docker://REF, or a registry image name resolved as podman
                             resolves short names) into the store, written as skopeo writes
                             it (same IDs); layers it has are skipped. registries.conf,
                             certs.d, credentials and policy.json apply as for podman
  import <tar> [NAME]        Make a one-layer image of a root filesystem tar (podman import)
  login <host> -u USER --password-stdin
                             Check credentials against a registry and store them where
                             podman does (auth.json, mode 0600, or a credential helper)
  logout <host>              Remove the credentials stored for a registry
  tag <ref> <name>...        Add names to an image; a name another image had moves
  untag <ref> [<name>...]    Remove names from an image (all when none are given)
  rmi <ref>...               Delete images and the layers only they use; a name of an image
                             with several is only untagged (as podman rmi)
  resolve-link <link-id>     Show the layer an overlay/l/<link-id> short link stands for
  tar-diff <A> <B>           Compare two tars (plain or gzip) entry by entry: - only in A,
                             + only in B, ~ a header field or the content differs.
                             Exit 0 same, 1 different, 2 trouble (as diff)

References: a full or unique-prefix ID, a name (alpine, alpine:3, localhost/x:1,
docker.io/library/alpine:latest) or name@sha256:digest.

Global options:
  --root DIR        Store graph root (default: from storage.conf, as podman)
  --runroot DIR     Store run root
  --storage-opt additionalimagestore=DIR
                    Add a read-only additional image store (repeatable)
  --json            Print JSON instead of tables
  -q, --quiet       No progress bars (drawn on stderr only when it is a terminal)
  --no-reflinks     Extract by copying even where FICLONE could share extents
  --no-owners       Do not chown extracted files (the default when not root)
  --no-xattrs       Do not copy extended attributes
  --compress ALGO   Layer blobs of copy: gzip (default), zstd or none
  --pretty          Indent JSON tables of contents
  --digests         Give each file in a table of contents its sha256
  --registries-conf FILE, --authfile FILE, --cert-dir DIR, --signature-policy FILE
                    Registry settings of pull, copy, login and logout, as podman's
  -h, --help        Show this help; after a command: its options and examples

Exit codes: 0 success, 1 error (one line on stderr, with its code), 2 usage error;
tar-diff: 0 same, 1 different, 2 trouble; verify: 0 clean (warnings allowed), 1 damage
found or the check failed, 2 usage error.

Examples:
  cstor image list
  cstor --root /var/lib/containers/storage image inspect alpine --json
  cstor layer inspect 3c03e8f2
  cstor layer export 3c03e8f2 -o layer.tar
  cstor image extract alpine ./rootfs
  cstor image toc alpine --pretty --digests
  cstor image cat alpine /etc/os-release
  cstor image find alpine --name '*.so*' --type f
  cstor image composefs alpine -o alpine.cfs
  cstor copy alpine oci:./layout:alpine --compress zstd
  cstor copy localhost/app:1 docker://registry.example:5000/app:1
  cstor verify --image alpine
  cstor tar-diff ours.tar <(tar-split asm --input x.tar-split.gz --path diff/ --output -)
`

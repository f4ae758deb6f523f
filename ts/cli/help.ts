/**
 * `cstor <command> --help`: each command's usage, what it does, its own options and examples.
 * `cstor --help` (usage.ts) is the overview; a test checks that every command it lists has an
 * entry here.
 */

interface Command {
  usage: string
  about: string
  options?: string
  examples: string[]
  /** Exit codes other than the usual 0 success, 1 error, 2 usage error. */
  exit?: string
}

const COMMANDS: Record<string, Command> = {
  'image list': {
    usage: 'image list [--json]',
    about: 'List the images, one row per name (untagged ones as <none>), as podman images -a.',
    examples: ['cstor image list', 'cstor --root /var/lib/containers/storage images --json'],
  },
  'image inspect': {
    usage: 'image inspect <ref>',
    about: "Print an image as JSON: its record, manifest, config (found through the manifest's\nconfig.digest), platform, layers (top first) and size.",
    examples: ['cstor image inspect alpine', 'cstor image inspect localhost/app:1 | jq .platform'],
  },
  'image layers': {
    usage: 'image layers <ref> [--json]',
    about: "List an image's layers, top first, with their diff digests and sizes.",
    examples: ['cstor image layers docker.io/library/alpine:latest'],
  },
  'image extract': {
    usage: 'image extract <ref> <dir> [--no-reflinks] [--no-owners] [--no-xattrs] [--quiet]',
    about: "Write the image's merged filesystem, as podman image mount shows it, into a new or\nempty directory: built beside it and renamed into place when complete.",
    options: [
      '--no-reflinks   copy file content even where FICLONE could share extents',
      '--no-owners     do not chown (the default when not root)',
      '--no-xattrs     do not copy extended attributes',
    ].join('\n'),
    examples: ['cstor image extract alpine ./rootfs'],
  },
  'image toc': {
    usage: 'image toc <ref> [--pretty] [--digests] [--whiteouts list]',
    about: "Print the merged filesystem's table of contents as eStargz-style JSON.",
    options: ['--pretty          indent the JSON', '--digests         give each regular file its sha256', '--whiteouts list  also list deleted paths and opaque directories'].join('\n'),
    examples: ['cstor image toc alpine --pretty --digests'],
  },
  'image cat': {
    usage: 'image cat <ref> <path>...',
    about: "Print files of the image one after another, as cat: read in place from the layers'\ndiff/ (no mount, no temp file). Paths are absolute or relative to the image root; symlinks\nresolve inside the image. A missing path fails with ENOENT, a directory with EISDIR.",
    examples: ['cstor image cat alpine /etc/os-release', 'cstor image cat debian etc/os-release var/lib/dpkg/status'],
  },
  'image ls': {
    usage: 'image ls <ref> [<path>] [-l] [-R] [--json]',
    about: "List a directory of the image's merged filesystem (default /), as ls; without <ref>,\nlist the images (as podman image ls).",
    options: ['-l       long listing: mode, links, owner, size, time', '-R       list subdirectories too', '--json   one record per entry'].join('\n'),
    examples: ['cstor image ls alpine /etc -l', 'cstor image ls localhost/app:1 -R --json'],
  },
  'image find': {
    usage: 'image find <ref> [--name GLOB] [--type f|d|l] [--json]',
    about: "List the paths of the image's merged filesystem, those whose name matches GLOB (*, ?,\n[a-z]) and of the type asked.",
    options: ['--name GLOB    match the last component, as find -name', '--type f|d|l   regular files, directories or symlinks only', '--json         one record per entry'].join('\n'),
    examples: ["cstor image find alpine --name '*.so*' --type f", 'cstor image find debian --name status --json'],
  },
  'image diff': {
    usage: 'image diff <ref> [<base>] [--json]',
    about: "Print what podman image diff prints: each path <ref> adds (A), changes (C) or deletes (D)\nagainst <base>, or against its top layer's parent; the paths every container gets\n(/etc/hosts, /proc, ...) left out, as podman leaves them. --json: podman's\n{ changed, added, deleted }.",
    examples: ['cstor image diff localhost/app:1', 'cstor image diff localhost/app:2 localhost/app:1 --json'],
  },
  'image analyze': {
    usage: 'image analyze <ref> [--json]',
    about: "Print each layer's size and the files it adds, changes and removes, then the image's\nefficiency, wasted bytes and wasted share of the user's bytes as dive --ci computes them\n(from the layers' headers: no podman save). --json: every file, and each wasted path.",
    examples: ['cstor image analyze localhost/app:1', "cstor image analyze alpine --json | jq '.efficiency'"],
  },
  'layer ls': {
    usage: 'layer ls <id> [-l] [--json]',
    about: "List one layer's own entries, from its tar-split headers; deleted paths (whiteouts) are\nmarked (deleted). Without <id>, list the layers.",
    examples: ['cstor layer ls 3c03e8f2', 'cstor layer ls 3c03e8f2 --json'],
  },
  'image composefs': {
    usage: 'image composefs <ref> -o FILE [--dumpfile] [--algorithm sha256|sha512] [--json]',
    about: [
      "Write the image's composefs image to FILE and print its composefs ID (the fs-verity digest",
      'of the image, what cfsctl oci compute-id prints). The image is EROFS format 1, byte for',
      'byte what C mkcomposefs --min-version=1 writes for its dumpfile; the tree is the one',
      'composefs-rs makes of an OCI image (root metadata from /usr, /run emptied, only',
      'security.capability kept); files over 64 bytes are named by their fs-verity digest',
      '(objects/XX/REST in a repository). FILE appears whole or not at all.',
    ].join('\n'),
    options: [
      '--dumpfile           write the composefs dumpfile instead of the EROFS image',
      '--algorithm ALG      sha512 (default, as cfsctl init) or sha256 (as mkcomposefs)',
      '--json               print the ID, object count and bytes as JSON',
    ].join('\n'),
    examples: ['cstor image composefs alpine -o alpine.cfs', 'cstor image composefs alpine -o alpine.dump --dumpfile'],
  },
  'layer list': {
    usage: 'layer list [--json]',
    about: 'List the layers: ID, parent, size, age, names.',
    examples: ['cstor layer list --json'],
  },
  'layer inspect': {
    usage: 'layer inspect <id>',
    about: "Print a layer's record as JSON, with its parents and its overlay lower chain.",
    examples: ['cstor layer inspect 3c03e8f2'],
  },
  'layer export': {
    usage: 'layer export <id> [-o FILE] [--no-verify]',
    about: "Write the layer's tar, rebuilt bit for bit from its tar-split and diff/ (its sha256 is\nthe layer's diff digest), to stdout or FILE. Refuses to write to a terminal.",
    options: ['-o FILE       write FILE atomically instead of stdout', '--no-verify   skip the CRC-64 check of each file (kernel copies only)'].join('\n'),
    examples: ['cstor layer export 3c03e8f2 -o layer.tar', 'cstor layer export 3c03e8f2 | tar -t'],
  },
  'layer toc': {
    usage: 'layer toc <id> [--pretty] [--digests]',
    about: "Print the layer tar's table of contents as eStargz-style JSON, whiteouts included.",
    examples: ['cstor layer toc 3c03e8f2 --pretty'],
  },
  'layer extract': {
    usage: 'layer extract <id> <dir> [--whiteouts overlay|aufs|apply] [--no-reflinks] [--no-owners] [--no-xattrs] [--quiet]',
    about: "Write one layer's own content (not its parents') into a new or empty directory.",
    options: ['--whiteouts overlay  deletions as overlayfs stores them: char 0:0, opaque xattr (default)', '--whiteouts aufs     as a layer tar has them: .wh.<name>, .wh..wh..opq', '--whiteouts apply    leave them out'].join('\n'),
    examples: ['cstor layer extract 3c03e8f2 ./layer --whiteouts aufs'],
  },
  copy: {
    usage: 'copy <ref> <destination> [--compress gzip|zstd|none] [--platform OS/ARCH[/VARIANT]] [--algorithm sha256|sha512] [--hardlink] [--registries-conf FILE] [--authfile FILE] [--cert-dir DIR] [--tls-verify=BOOL] [--json] [--quiet]',
    about: [
      'Copy an image to a destination named as skopeo names it:',
      '  docker://HOST/REPO[:TAG]     push to a registry (podman push): blobs it has are skipped,',
      '                               blobs in another repository of it are mounted, manifest last;',
      '                               the registry\'s location, credentials and certificates as',
      '                               podman push finds them (registries.conf, auth files and',
      '                               credential helpers, certs.d)',
      '  docker-archive:FILE[:NAME]   what podman save writes (layers uncompressed)',
      '  oci-archive:FILE[:NAME]      an OCI layout in a tar',
      '  oci:DIR[:NAME]               an OCI layout, created or appended to (an entry of the same',
      '                               NAME is replaced)',
      '  composefs:REPO[:NAME]        a composefs-rs 0.9.4 repository (made as cfsctl init makes one',
      '                               when missing): objects reflinked or copied from the store',
      '                               (hard links with --hardlink),',
      '                               split streams, the EROFS image; cfsctl oci finds it by NAME',
      'Layers are rebuilt bit for bit and checked against their diff digests on the way; the config',
      'goes byte for byte, so the image ID stays. Archives are renamed into place when complete;',
      'a composefs repository gets its objects first and the NAME last.',
    ].join('\n'),
    options: [
      '--compress ALGO         layer blobs: gzip (default, on every core), zstd (multithreaded) or none',
      '--platform OS/ARCH      fail unless the image is of this platform',
      '--algorithm ALGO        a new composefs repository\'s fs-verity hash: sha512 (default) or sha256',
      '--hardlink              composefs: objects are hard links to the store\'s layer files, not',
      '                        reflinks or copies; the repository must be on the mount of the',
      '                        store\'s overlay/ (else EXDEV, before anything is written: podman',
      '                        often bind-mounts overlay/ on itself, rootless podman always, and',
      '                        a hard link cannot leave a mount). In a secure repository',
      '                        this would enable fs-verity on the store\'s own files for good',
      '                        (they could never be written again); secure repositories are not',
      '                        supported yet. A change to a store file would change the object;',
      '                        objects keep the files\' owners and modes, setuid bits too (a new',
      '                        repository is 0700, as cfsctl init makes one).',
      '--registries-conf FILE  registries.conf to read instead of the user\'s or the system\'s',
      '--authfile FILE         the one auth file to read credentials from',
      '--cert-dir DIR          *.crt CAs and *.cert/*.key client certificates for every registry',
      '--tls-verify=BOOL       false: no TLS verification, plain HTTP allowed; true: verify even',
      '                        an insecure registry; unset: registries.conf decides',
    ].join('\n'),
    examples: [
      'cstor copy localhost/app:1 docker://registry.example:5000/team/app:1',
      'cstor copy alpine docker-archive:alpine.tar:alpine:latest && podman load -i alpine.tar',
      'cstor copy alpine oci:./layout:alpine --compress zstd',
      'cstor copy localhost/app:1 composefs:./repo:app && cfsctl --repo ./repo oci mount app /mnt',
    ],
  },
  serve: {
    usage: 'serve [--socket PATH [--socket-group GROUP] [--writable]] [--registry ADDR [--tls-cert FILE --tls-key FILE] [--htpasswd FILE] [--no-verify] [--quiet]]',
    about: [
      'Lend the store until Ctrl-C, in one or both of two ways.',
      '',
      '--socket: JSON-RPC 2.0 on a new Unix socket, every operation of the API by name, layers',
      'as fds (SCM_RIGHTS): ListImages, ExportLayer, GetLayerSplitfdstream, StreamLayer, ImageToc,',
      'ExtractImage, CopyTo, Verify, ... Whoever can connect can read every layer:',
      'the socket is created mode 0600 whatever the umask, so only its owner (and root) can.',
      '',
      '--registry: a read-only OCI registry (the distribution spec\'s pull side) on ADDR. An image',
      'name without its tag is the repository: ADDR/localhost/app:1 pulls localhost/app:1. Layers',
      'are served uncompressed (their digests are the diff IDs), the config byte for byte, so the',
      'pulled image has the same ID. Each layer is sent under the store\'s layers lock: podman rmi',
      'waits for the transfer. One access-log line per request goes to stdout.',
    ].join('\n'),
    options: [
      '--socket-group GROUP   mode 0660 and owned by GROUP (name or GID): its members may connect',
      '--writable             also answer Pull, Import, Tag, Untag, RemoveImage, RemoveLayer,',
      '                       CreateLayer, CreateImage, Login, Logout (whoever may connect may',
      '                       then write, and pull and log in with this user\'s credentials)',
      '--registry ADDR        IP:PORT, [IPv6]:PORT, or PORT for 127.0.0.1:PORT (loopback)',
      '--tls-cert FILE        HTTPS with this PEM certificate chain ...',
      '--tls-key FILE         ... and this PEM private key',
      '--htpasswd FILE        basic auth against bcrypt entries (htpasswd -B)',
      '--no-verify            skip the CRC-64 check of file bodies while sending',
      '--quiet                no access log',
    ].join('\n'),
    examples: [
      'cstor serve --socket /run/cstor.sock --socket-group cstor',
      'cstor serve --registry 5000 & skopeo copy --src-tls-verify=false docker://127.0.0.1:5000/localhost/app:1 oci:./app',
      'cstor serve --registry 0.0.0.0:5443 --tls-cert node.crt --tls-key node.key --htpasswd users',
    ],
  },
  verify: {
    usage: 'verify [--image REF] [--quick] [--json] [--quiet]',
    about: [
      "Check the store for damage: every layer's diff/ against its tar headers, path by path (type,",
      'mode, owner, mtime, size, link target, xattrs, whiteouts; what podman system check compares),',
      "every layer's tar rebuilt from tar-split and diff/ (each file's CRC-64, the whole tar's diff",
      "digest and size), every image's big data against its recorded sizes and digests, parents,",
      'image layers, overlay link and lower files. A whole-store check also reports dangling l/',
      'links, overlay/ directories no layer names (warnings) and layers no image or container uses',
      "(info). Differences podman's own zstd:chunked pulls leave are info too.",
    ].join('\n'),
    options: [
      '--image REF   check only this image: its big data and its layers',
      '--quick       structure and metadata only: no file content read, no tar rebuilt',
    ].join('\n'),
    examples: ['cstor verify', 'cstor verify --quick', 'cstor verify --image alpine --json | jq .findings'],
    exit: '0 clean (warnings and info allowed), 1 an error was found or the check failed, 2 usage',
  },
  pull: {
    usage: 'pull <oci:DIR[:REF] | docker-archive:FILE[:REF] | docker://REF | NAME> [NAME] [--registries-conf FILE] [--authfile FILE] [--cert-dir DIR] [--tls-verify=BOOL] [--signature-policy FILE] [--json] [--quiet]',
    about: [
      'Pull an image from an OCI layout, a docker-archive or a registry into the store, written as podman 5.8',
      'writes it: layer IDs from the diff IDs, image ID from the config digest, the manifest and',
      'config stored byte for byte. Layers the store has are skipped; layer blobs are checked',
      'against the manifest digests and the config diff IDs. A store that does not exist yet is',
      'created; a rootless store is written inside podman unshare, as podman writes it.',
      'A registry image goes where podman would take it: registries.conf (mirrors first, insecure,',
      'blocked; a name without a registry through aliases and unqualified-search registries),',
      'certs.d, the auth files and credential helpers; policy.json judges every image before',
      'anything but its manifest is fetched.',
    ].join('\n'),
    options: [
      '--registries-conf FILE  registries.conf to read instead of the user\'s or the system\'s',
      '--authfile FILE         the one auth file to read credentials from',
      '--cert-dir DIR          *.crt CAs and *.cert/*.key client certificates for every registry',
      '--tls-verify=BOOL       false: no TLS verification, plain HTTP allowed; true: verify even',
      '                        an insecure registry; unset: registries.conf decides',
      '--signature-policy FILE the policy.json to judge the image by',
    ].join('\n'),
    examples: ['cstor pull oci:./layout:app localhost/app:1', 'cstor pull docker-archive:saved.tar', 'cstor pull docker://quay.io/podman/hello:latest', 'cstor pull myapp:1'],
  },
  import: {
    usage: 'import <tar> [NAME] [--signature-policy FILE] [--json]',
    about: 'Make a one-layer image of a root filesystem tar (plain, gzip or zstd), as podman import:\nthe layer ID is its diff digest, the config and manifest (and so the image ID) those podman\nwrites. policy.json\'s tarball transport judges it first, as podman\'s import. A store that\ndoes not exist yet is created.',
    options: '--signature-policy FILE  the policy.json to use instead of the user\'s or the system\'s',
    examples: ['cstor import rootfs.tar localhost/base:1', 'cstor import rootfs.tar.gz'],
  },
  login: {
    usage: 'login <host[:port][/namespace]> -u USER (--password-stdin | -p PASSWORD) [--authfile FILE] [--registries-conf FILE] [--cert-dir DIR] [--tls-verify=BOOL] [--json]',
    about: [
      'Log in to a registry as podman login does: the user name and password are checked against',
      'the registry first (GET /v2/ with its TLS settings from registries.conf and certs.d) and',
      'stored only when it accepts them, where podman stores them: the credential helper the auth',
      'file names for the registry, else the auth file ($XDG_RUNTIME_DIR/containers/auth.json unless',
      '--authfile names another), written as podman writes it, mode 0600. podman, skopeo and buildah',
      'read them from there, and cstor reads theirs. cstor never prompts.',
    ].join('\n'),
    options: [
      '-u, --username USER     the user name',
      '--password-stdin        read the password from stdin (without its last newline)',
      '-p, --password PASSWORD the password (visible to other users in the process list)',
      '--authfile FILE         the auth file to write instead of podman\'s',
      '--registries-conf FILE  registries.conf (credential-helpers, insecure, blocked)',
      '--cert-dir DIR          *.crt CAs and *.cert/*.key client certificates',
      '--tls-verify=BOOL       false: no TLS verification, plain HTTP allowed',
    ].join('\n'),
    examples: ['cstor login registry.example:5000 -u ci --password-stdin < password.txt', 'echo "$TOKEN" | cstor login quay.io/team -u me --password-stdin'],
  },
  logout: {
    usage: 'logout <host[:port][/namespace]> [--authfile FILE] [--registries-conf FILE] [--json]',
    about: 'Remove the credentials stored for a registry (or a namespace in it) from the auth file and\nthe credential helpers, as podman logout. Not logged in: an error (ENOENT).',
    options: ['--authfile FILE         the auth file to edit instead of podman\'s', '--registries-conf FILE  registries.conf (credential-helpers)'].join('\n'),
    examples: ['cstor logout registry.example:5000'],
  },
  tag: {
    usage: 'tag <ref> <name>... [--json]',
    about: "Add names to an image, normalized as podman stores them (x is localhost/x:latest); a name\nanother image had moves to this one, and each goes into the image's names history.",
    examples: ['cstor tag localhost/app:1 localhost/app:stable'],
  },
  untag: {
    usage: 'untag <ref> [<name>...] [--json]',
    about: 'Remove names from an image; all of them when none are given.',
    examples: ['cstor untag localhost/app:1 localhost/app:stable'],
  },
  rmi: {
    usage: 'rmi <ref>... [--json]',
    about: 'Delete images and the layers no other image or container uses, as podman rmi: a name of\nan image that has several is only untagged, and a build\'s nameless parent image goes too.\nRefused (EBUSY) while a container uses the image.',
    examples: ['cstor rmi localhost/app:1'],
  },
  'resolve-link': {
    usage: 'resolve-link <link-id>',
    about: 'Print the ID of the layer an overlay/l/<link-id> short link stands for.',
    examples: ['cstor resolve-link TIQR6IKSZT44YTTH27MMEWJPZS'],
  },
  'tar-diff': {
    usage: 'tar-diff <A> <B> [--json]',
    about: 'Compare two tars (plain or gzip) entry by entry: - only in A, + only in B, ~ a header\nfield or the content differs.',
    examples: ['cstor tar-diff ours.tar <(tar-split asm --input x.tar-split.gz --path diff/ --output -)'],
    exit: '0 same, 1 different, 2 trouble (as diff)',
  },
}

const ALIASES: Record<string, string> = { images: 'image list' }

function render(c: Command): string {
  const indent = (text: string) => text.replace(/^/gm, '  ')
  return [
    `Usage: cstor [global options] ${c.usage}\n`,
    `${c.about}\n`,
    ...(c.options ? [`Options:\n${indent(c.options)}\n`] : []),
    `Examples:\n${indent(c.examples.join('\n'))}\n`,
    `Exit codes: ${c.exit ?? '0 success, 1 error (one line on stderr, with its code), 2 usage error'}.`,
    'Global options (--root, --runroot, --storage-opt, --json, --quiet): see cstor --help.\n',
  ].join('\n')
}

/** The sub-commands of a group (`image`, `layer`), one usage line each. */
function renderGroup(group: string): string | undefined {
  const members = Object.entries(COMMANDS).filter(([name]) => name.startsWith(`${group} `))
  if (members.length === 0) return undefined
  const lines = members.map(([, c]) => `  cstor ${c.usage}`)
  return `Usage: cstor ${group} <command> [args]\n\nCommands:\n${lines.join('\n')}\n\nRun 'cstor ${group} <command> --help' for one command's options and examples.\n`
}

/** The help for the command the positional arguments name, or `undefined` when they name none. */
export function commandHelp(positionals: string[]): string | undefined {
  for (const words of [positionals.slice(0, 2), positionals.slice(0, 1)]) {
    const key = words.join(' ')
    const name = ALIASES[key] ?? key
    if (COMMANDS[name]) return render(COMMANDS[name])
  }
  return positionals.length > 0 ? renderGroup(positionals[0]) : undefined
}

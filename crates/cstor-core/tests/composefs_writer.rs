//! The EROFS writer against C `mkcomposefs` (composefs 1.0.8, in the podman 5.8 userland
//! `scripts/podman5` runs) on trees built to reach every layout decision the fixture images do
//! not: directories spanning blocks, inline files around the half-block and block limits, long
//! symlinks, external files of every chunk size, shared and unshared xattrs of every prefix
//! (overlay ones escaped), hardlinks, devices, whiteouts (format 0 bumped to 1), ids and times
//! that need extended inodes. Each tree's dumpfile goes to `mkcomposefs --min-version=N`; its
//! image must be the writer's, byte for byte, and read back by cstor's reader as `composefs-info
//! dump` reads it.

use std::path::{Path, PathBuf};
use std::process::Command;

use cstor_core::content::dumpfile;
use cstor_core::content::erofs::{reader::Image, writer, Data, Entry, Inode};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const XATTR_NAMES: [&str; 9] = [
    "user.a",
    "user.long.name.for.a.test",
    "trusted.overlay.opaque",
    "trusted.foo",
    "security.capability",
    "security.selinux",
    "system.posix_acl_access",
    "lustre.x",
    "other.namespace",
];

/// A tree of `size` entries (DFS order, names sorted), every `nid` distinct but hardlinks'.
fn tree(seed: u64, size: usize, varied_times: bool) -> Vec<Entry> {
    let mut rng = Rng(seed);
    let mut dirs: Vec<Vec<u8>> = vec![Vec::new()];
    let mut flat: Vec<Entry> = vec![Entry {
        path: Vec::new(),
        inode: Inode {
            mode: 0o40755,
            mtime: 1_700_000_000,
            ..Inode::default()
        },
    }];
    let mut files: Vec<usize> = Vec::new();
    for n in 1..size as u64 {
        let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
        let longest = if rng.below(4) == 0 { 200 } else { 12 };
        let name_len = 1 + rng.below(longest) as usize;
        let name: Vec<u8> = (0..name_len)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789._-"[rng.below(39) as usize])
            .collect();
        if name == b"." || name == b".." {
            continue;
        }
        let mut path = parent.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&name);
        if flat.iter().any(|e| e.path == path) {
            continue;
        }
        let mut inode = Inode {
            nid: n,
            uid: if rng.below(10) == 0 {
                100_000
            } else {
                rng.below(3) as u32
            },
            gid: rng.below(3) as u32,
            mtime: 1_700_000_000 + if varied_times { rng.below(3) as i64 } else { 0 },
            mtime_nsec: if varied_times {
                rng.below(2) as u32 * 500
            } else {
                0
            },
            nlink: 1,
            ..Inode::default()
        };
        for _ in 0..rng.below(4) {
            let name = XATTR_NAMES[rng.below(XATTR_NAMES.len() as u64) as usize];
            let value = match rng.below(3) {
                0 => b"y".to_vec(),
                1 => Vec::new(),
                _ => {
                    let len = rng.below(80) as usize;
                    rng.bytes(len)
                }
            };
            inode.xattrs.retain(|(k, _)| k != name.as_bytes());
            inode.xattrs.push((name.as_bytes().to_vec(), value));
        }
        inode.xattrs.sort();
        match rng.below(12) {
            0 | 1 => {
                inode.mode = 0o40755;
                dirs.push(path.clone());
            }
            2 => {
                let len = [1, 60, 2000, 2500, 3900][rng.below(5) as usize];
                inode.mode = 0o120777;
                inode.size = len as u64;
                inode.data = Data::Inline((0..len).map(|i| b'a' + (i % 26) as u8).collect());
            }
            3 => {
                inode.mode = 0o20644;
                inode.rdev = rng.below(2) as u32 * 0x0801;
            }
            4 => {
                inode.mode = 0o60600;
                inode.rdev = 0x0802;
            }
            5 => inode.mode = 0o10644,
            6 => {
                let len = [1, 64, 2048, 2049, 4095, 4096, 4097, 5000][rng.below(8) as usize];
                inode.mode = 0o100644;
                inode.size = len as u64;
                inode.data = Data::Inline(rng.bytes(len));
            }
            _ => {
                inode.mode = 0o100644 | if rng.below(5) == 0 { 0o4000 } else { 0 };
                inode.size = [65, 4096, 1 << 20, (1 << 33) + 1, 1 << 43][rng.below(5) as usize];
                let hex: String = rng.bytes(32).iter().map(|b| format!("{b:02x}")).collect();
                let verity = (rng.below(3) != 0).then(|| rng.bytes(32));
                inode.data = Data::External {
                    payload: format!("{}/{}", &hex[..2], &hex[2..]).into_bytes(),
                    verity,
                };
            }
        }
        if inode.mode & 0o170000 == 0o100000 {
            files.push(flat.len());
        }
        flat.push(Entry { path, inode });
        // Now and then a hardlink to an earlier file.
        if rng.below(10) == 0 && !files.is_empty() {
            let target = files[rng.below(files.len() as u64) as usize];
            let mut link = flat[target].clone();
            link.path.extend_from_slice(b".link");
            if !flat.iter().any(|e| e.path == link.path) {
                flat.push(link);
            }
        }
    }
    // Link counts, then DFS order with names sorted (the order a dumpfile lists).
    for i in 0..flat.len() {
        if flat[i].inode.mode & 0o170000 != 0o040000 {
            let nid = flat[i].inode.nid;
            flat[i].inode.nlink = flat.iter().filter(|e| e.inode.nid == nid).count() as u32;
        }
    }
    let mut ordered = Vec::new();
    let mut stack = vec![Vec::new()];
    while let Some(dir) = stack.pop() {
        let mut children: Vec<&Entry> = flat
            .iter()
            .filter(|e| {
                !e.path.is_empty() && {
                    let slash = e.path.iter().rposition(|b| *b == b'/');
                    slash.map_or(dir.is_empty(), |s| e.path[..s] == dir[..])
                }
            })
            .collect();
        children.sort_by(|a, b| a.path.cmp(&b.path));
        if dir.is_empty() {
            ordered.push(flat[0].clone());
        }
        let mut subdirs = Vec::new();
        for child in children {
            ordered.push(child.clone());
            if child.inode.mode & 0o170000 == 0o040000 {
                subdirs.push(child.path.clone());
            }
        }
        // Not DFS, but a parent is always listed before what is in it: enough for both tools.
        stack.extend(subdirs.into_iter().rev());
    }
    ordered
}

fn podman5(work: &Path, script: &str) -> String {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(repo.join("scripts/podman5"))
        .arg("--bind")
        .arg(work)
        .args(["sh", "-c", script])
        .output()
        .expect("scripts/podman5 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_writer_writes_what_mkcomposefs_writes_for_the_same_dumpfile() {
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut cases = Vec::new();
    for seed in 1..=24u64 {
        let size = [10, 100, 600][seed as usize % 3];
        let entries = tree(seed, size, seed % 2 == 0);
        for version in [0, 1] {
            let name = format!("t{seed}-v{version}");
            let mut text = Vec::new();
            dumpfile::write(&entries, &mut text).unwrap();
            std::fs::write(work.path().join(format!("{name}.dump")), &text).unwrap();
            let ours = writer::write(&entries, version);
            cases.push((name, version, ours));
        }
    }
    let dir = work.path().display();
    let script = cases
        .iter()
        .map(|(name, version, _)| {
            // Without --min-version mkcomposefs writes format 0, or 1 when there are whiteouts.
            let min = if *version == 1 { "--min-version=1" } else { "" };
            format!(
                "{{ mkcomposefs {min} --from-file {dir}/{name}.dump {dir}/{name}.c \
                 && composefs-info dump {dir}/{name}.c > {dir}/{name}.c.dump; }} 2>/dev/null \
                 || echo FAILED {name}"
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let refused = podman5(work.path(), &script);
    let mut compared = 0;
    for (name, _, ours) in &cases {
        // Where C refuses a tree (see the writer's `xattr_space`), cstor refuses it too.
        if refused.lines().any(|l| l == format!("FAILED {name}")) {
            assert!(ours.is_err(), "{name}: C refused it, cstor wrote it");
            continue;
        }
        let ours = ours.as_ref().unwrap();
        compared += 1;
        let theirs = std::fs::read(work.path().join(format!("{name}.c"))).unwrap();
        assert!(theirs == *ours, "{name}: the images differ");
        // What C reads back from our image, cstor's reader reads too.
        let image = Image::new(ours, Path::new(name)).unwrap();
        let read = image.entries().unwrap();
        let mut text = Vec::new();
        dumpfile::write(&read, &mut text).unwrap();
        let c_dump = std::fs::read_to_string(work.path().join(format!("{name}.c.dump"))).unwrap();
        let (ours, theirs) = (
            normalized(&String::from_utf8_lossy(&text)),
            normalized(&c_dump),
        );
        if let Some((a, b)) = ours.iter().zip(&theirs).find(|(a, b)| a != b) {
            let cut = |s: &str| s.chars().take(300).collect::<String>();
            panic!(
                "{name}: cstor reads\n  {}\nwhere C reads\n  {}",
                cut(a),
                cut(b)
            );
        }
        assert_eq!(ours.len(), theirs.len(), "{name}");
    }
    assert!(compared >= 40, "{compared} trees compared");
}

/// A dumpfile without what the two printers write differently: hardlink lines (C prints the
/// inode's fields after `@`, composefs-rs dashes), each line's xattrs in a fixed order.
fn normalized(dump: &str) -> Vec<String> {
    dump.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.get(2).is_some_and(|m| m.starts_with('@')) {
                return format!("{} hardlink {}", fields[0], fields[8]);
            }
            let (head, xattrs) = fields.split_at(fields.len().min(11));
            let mut xattrs = xattrs.to_vec();
            xattrs.sort();
            format!("{} {}", head.join(" "), xattrs.join(" "))
        })
        .collect()
}

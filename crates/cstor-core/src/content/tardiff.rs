//! Comparing two tar archives entry by entry.
//!
//! A byte comparison says *that* two layer tars differ; this says *how*: which names only one
//! side has, which header fields differ, whose content differs. Entries are matched by their
//! normalised name (`./a/` and `a` are the same entry), so order differences alone are not
//! reported. PAX records other than those that only restate a header field are compared too —
//! that is where xattrs (`SCHILY.xattr.*`) and sub-second times live.
//!
//! Either input may be gzip-compressed (detected by its magic). Reading is streamed: only a
//! summary and a SHA-256 of each entry's content are kept.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// PAX keys that restate header fields the comparison already covers.
const PAX_HEADER_KEYS: &[&str] = &["path", "linkpath", "size"];

/// What is known of one entry: every comparable header field, by name, and its content digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntrySummary {
    fields: BTreeMap<String, String>,
}

/// One way the second archive differs from the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The name is in the first archive only.
    Missing { name: String },
    /// The name is in the second archive only.
    Extra { name: String },
    /// A header field (`mode`, `uid`, `type`, `linkname`, `pax:SCHILY.xattr.user.x`, ...) or the
    /// `content` digest differs; `None` where one side does not have the field.
    Field {
        name: String,
        field: String,
        first: Option<String>,
        second: Option<String>,
    },
}

/// The outcome of [`tar_diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarDiff {
    pub first_entries: u64,
    pub second_entries: u64,
    pub differences: Vec<Difference>,
}

/// Compares the tar archives at `first` and `second` (plain or gzip).
pub fn tar_diff(first: &Path, second: &Path) -> Result<TarDiff> {
    let (first_entries, a) = summarise(first)?;
    let (second_entries, b) = summarise(second)?;
    let mut differences = Vec::new();
    for (name, left) in &a {
        let Some(right) = b.get(name) else {
            differences.push(Difference::Missing { name: name.clone() });
            continue;
        };
        let keys: std::collections::BTreeSet<&String> =
            left.fields.keys().chain(right.fields.keys()).collect();
        for field in keys {
            let (x, y) = (left.fields.get(field), right.fields.get(field));
            if x != y {
                differences.push(Difference::Field {
                    name: name.clone(),
                    field: field.clone(),
                    first: x.cloned(),
                    second: y.cloned(),
                });
            }
        }
    }
    differences.extend(
        b.keys()
            .filter(|name| !a.contains_key(*name))
            .map(|name| Difference::Extra { name: name.clone() }),
    );
    Ok(TarDiff {
        first_entries,
        second_entries,
        differences,
    })
}

/// Reads an archive into name → summary (a later entry of the same name wins, as when
/// extracting) and counts its entries.
fn summarise(path: &Path) -> Result<(u64, BTreeMap<String, EntrySummary>)> {
    let file = File::open(path).at(path)?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let gzip = input.fill_buf().at(path)?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let corrupt = |e: std::io::Error| Error::Corrupt {
        path: path.to_path_buf(),
        detail: format!("not a readable tar archive: {e}"),
    };
    let mut archive = tar::Archive::new(reader);
    let mut summaries = BTreeMap::new();
    let mut count = 0;
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        count += 1;
        let name = normalise(&entry.path().map_err(corrupt)?);
        let summary = summary_of(&mut entry).map_err(corrupt)?;
        summaries.insert(name, summary);
    }
    Ok((count, summaries))
}

/// `./a/b/` → `a/b`; the root (`.`, `./`) → `.`.
fn normalise(path: &Path) -> String {
    let text = path.to_string_lossy();
    let trimmed = text.trim_start_matches("./").trim_end_matches('/');
    match trimmed {
        "" | "." => ".".to_owned(),
        name => name.to_owned(),
    }
}

fn summary_of<R: Read>(entry: &mut tar::Entry<R>) -> std::io::Result<EntrySummary> {
    let header = entry.header().clone();
    let mut fields = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        fields.insert(key.to_owned(), value);
    };
    put("type", type_name(header.entry_type()));
    put("mode", format!("{:o}", header.mode()?));
    put("uid", header.uid()?.to_string());
    put("gid", header.gid()?.to_string());
    put("mtime", header.mtime()?.to_string());
    put("size", entry.size().to_string());
    if let Ok(Some(user)) = header.username() {
        put("uname", user.to_owned());
    }
    if let Ok(Some(group)) = header.groupname() {
        put("gname", group.to_owned());
    }
    if let Some(link) = entry.link_name()? {
        put("linkname", link.to_string_lossy().into_owned());
    }
    let kind = header.entry_type();
    if kind.is_character_special() || kind.is_block_special() {
        let major = header.device_major()?.unwrap_or(0);
        let minor = header.device_minor()?.unwrap_or(0);
        put("device", format!("{major}:{minor}"));
    }
    if let Some(extensions) = entry.pax_extensions()? {
        for extension in extensions {
            let extension = extension?;
            let key = String::from_utf8_lossy(extension.key_bytes()).into_owned();
            if !PAX_HEADER_KEYS.contains(&key.as_str()) {
                let value = String::from_utf8_lossy(extension.value_bytes()).into_owned();
                put(&format!("pax:{key}"), value);
            }
        }
    }
    let mut hasher = Sha256::new();
    std::io::copy(entry, &mut hasher)?;
    put("content", crate::digest::finish(hasher));
    Ok(EntrySummary { fields })
}

fn type_name(kind: tar::EntryType) -> String {
    use tar::EntryType::*;
    match kind {
        Regular | Continuous => "file".into(),
        Link => "hardlink".into(),
        Symlink => "symlink".into(),
        Char => "char".into(),
        Block => "block".into(),
        Directory => "dir".into(),
        Fifo => "fifo".into(),
        other => format!("type {}", other.as_byte() as char),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &str, u32)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(1);
            header.set_uid(0);
            header.set_gid(0);
            header.set_cksum();
            builder
                .append_data(&mut header, name, data.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn reports_missing_extra_fields_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let [a, b] = [
            [
                ("./same", "x", 0o644),
                ("gone", "", 0o644),
                ("m", "1", 0o644),
            ],
            [("same", "x", 0o644), ("new", "", 0o644), ("m", "2", 0o755)],
        ]
        .map(|entries| {
            let path = dir.path().join(entries[1].0);
            std::fs::write(&path, archive(&entries)).unwrap();
            path
        });
        let diff = tar_diff(&a, &b).unwrap();
        let fields: Vec<_> = diff
            .differences
            .iter()
            .map(|d| match d {
                Difference::Missing { name } => format!("-{name}"),
                Difference::Extra { name } => format!("+{name}"),
                Difference::Field { name, field, .. } => format!("~{name}:{field}"),
            })
            .collect();
        assert_eq!(fields, ["-gone", "~m:content", "~m:mode", "+new"]);
        assert!(tar_diff(&a, &a).unwrap().differences.is_empty());
    }
}

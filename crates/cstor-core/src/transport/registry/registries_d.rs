//! registries.d, read as containers/image's `docker/registries_d.go` reads it — for the one
//! setting cstor acts on: `use-sigstore-attachments`, whether an image's sigstore signatures
//! are looked for in the registry beside it.
//!
//! The directory is `--registries.d` when given, else `~/.config/containers/registries.d` when
//! it exists, else `/etc/containers/registries.d`. Its `*.yaml` files are merged; a
//! `default-docker` or a `docker` namespace defined in two files is an error. For a reference,
//! the entry for the whole reference wins, then its namespaces from the repository up
//! ([`Reference::policy_namespaces`]), then `default-docker`; the first that sets the key
//! decides, and without one the answer is no.

use std::path::{Path, PathBuf};

use yaml_rust2::parser::{EventReceiver, Parser};
use yaml_rust2::{Event, Yaml, YamlLoader};

use crate::error::{Error, Result};
use crate::transport::registry::Reference;
use crate::transport::system_context::{home_dir, SystemContext};

const USER_DIR: &str = ".config/containers/registries.d";
const SYSTEM_DIR: &str = "/etc/containers/registries.d";
const KEY: &str = "use-sigstore-attachments";

/// Whether sigstore attachments are used for `reference`.
pub(crate) fn use_sigstore_attachments(ctx: &SystemContext, reference: &Reference) -> Result<bool> {
    let dir = match &ctx.registries_d {
        Some(dir) => dir.clone(),
        None => {
            let user = home_dir().join(USER_DIR);
            match user.exists() {
                true => user,
                false => PathBuf::from(SYSTEM_DIR),
            }
        }
    };
    let merged = load(&dir)?;
    let scopes = std::iter::once(reference.policy_identity()).chain(reference.policy_namespaces());
    for scope in scopes {
        if let Some(setting) = merged.docker.iter().find(|(name, _)| *name == scope) {
            if let Some(value) = setting.1 {
                return Ok(value);
            }
        }
    }
    Ok(merged.default_docker.flatten().unwrap_or(false))
}

/// The settings of every file: `default-docker`'s (when some file has it) and each namespace's.
#[derive(Default)]
struct Merged {
    default_docker: Option<Option<bool>>,
    docker: Vec<(String, Option<bool>)>,
}

fn load(dir: &Path) -> Result<Merged> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Merged::default()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut merged = Merged::default();
    let mut default_from = PathBuf::new();
    let mut names: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.to_string_lossy().ends_with(".yaml") {
            names.push(path);
        }
    }
    names.sort();
    for path in names {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |detail: String| Error::Config {
            path: path.clone(),
            detail,
        };
        if has_aliases(&text).map_err(|e| bad(e.to_string()))? {
            return Err(bad(
                "YAML anchors and aliases are not read here (a registries.d file has no use for them, and each alias copies what it names)".into(),
            ));
        }
        let documents = YamlLoader::load_from_str(&text).map_err(|e| bad(e.to_string()))?;
        let top = match documents.first() {
            None | Some(Yaml::Null) => continue,
            Some(Yaml::Hash(top)) => top,
            Some(_) => return Err(bad("the document is not a mapping".into())),
        };
        for (key, value) in top {
            match key.as_str() {
                Some("default-docker") if !value.is_null() => {
                    if merged.default_docker.is_some() {
                        return Err(bad(format!(
                            "\"default-docker\" is defined both in {} and here",
                            default_from.display()
                        )));
                    }
                    merged.default_docker = Some(setting(value).map_err(bad)?);
                    default_from = path.clone();
                }
                Some("docker") if !value.is_null() => {
                    let Yaml::Hash(namespaces) = value else {
                        return Err(bad("\"docker\" is not a mapping".into()));
                    };
                    for (name, value) in namespaces {
                        let name = scalar(name)
                            .ok_or_else(|| bad("a \"docker\" key is not a string".into()))?;
                        if merged.docker.iter().any(|(n, _)| *n == name) {
                            return Err(bad(format!(
                                "\"docker\" namespace {name:?} is defined in two files"
                            )));
                        }
                        merged.docker.push((name, setting(value).map_err(bad)?));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(merged)
}

/// Whether `text` uses an alias (`*name`): the loader copies the node an alias names, so a few
/// nested aliases make a small file expand without bound.
fn has_aliases(text: &str) -> Result<bool, yaml_rust2::ScanError> {
    struct Aliases(bool);
    impl EventReceiver for Aliases {
        fn on_event(&mut self, event: Event) {
            self.0 |= matches!(event, Event::Alias(_));
        }
    }
    let mut found = Aliases(false);
    Parser::new_from_str(text).load(&mut found, true)?;
    Ok(found.0)
}

/// A namespace's `use-sigstore-attachments`, when it sets it.
fn setting(namespace: &Yaml) -> Result<Option<bool>, String> {
    let Yaml::Hash(fields) = namespace else {
        return match namespace {
            Yaml::Null => Ok(None),
            _ => Err("a namespace is not a mapping".into()),
        };
    };
    match fields.get(&Yaml::String(KEY.into())) {
        None | Some(Yaml::Null) => Ok(None),
        Some(Yaml::Boolean(value)) => Ok(Some(*value)),
        Some(other) => Err(format!("{KEY} is {other:?}, not a boolean")),
    }
}

/// A key as the string YAML decodes it to (`127.0.0.1:5000` is a string, `1` a number).
fn scalar(key: &Yaml) -> Option<String> {
    match key {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_scope_decides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "# comment\ndefault-docker:\n  use-sigstore-attachments: true\ndocker:\n  127.0.0.1:5000/team:\n    use-sigstore-attachments: false\n  quay.io:\n    lookaside: https://example.com\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "not: [valid").unwrap();
        let ctx = SystemContext {
            registries_d: Some(dir.path().to_owned()),
            ..SystemContext::default()
        };
        let uses = |r: &str| use_sigstore_attachments(&ctx, &Reference::parse(r).unwrap()).unwrap();
        assert!(!uses("127.0.0.1:5000/team/app:1"));
        assert!(uses("127.0.0.1:5000/other/app:1"));
        assert!(uses("quay.io/x/y:1"));
        std::fs::write(dir.path().join("c.yaml"), "docker:\n  quay.io: {}\n").unwrap();
        let err = use_sigstore_attachments(&ctx, &Reference::parse("x.io/a").unwrap());
        assert_eq!(err.unwrap_err().code(), "ECONFIG");
        let laughs = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
        std::fs::write(dir.path().join("c.yaml"), laughs).unwrap();
        let err = use_sigstore_attachments(&ctx, &Reference::parse("x.io/a").unwrap());
        assert!(err.unwrap_err().to_string().contains("aliases"));
    }
}

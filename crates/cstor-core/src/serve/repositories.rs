//! The store's images as a registry's repositories: an image name without its tag is the
//! repository (`localhost/app:1` → repository `localhost/app`, tag `1`), so a client pulls it
//! as `HOST:PORT/localhost/app:1`.

use std::collections::BTreeMap;

use crate::store::images::Image;
use crate::store::names::ImageName;

/// The repositories and tags of a snapshot of the store's images.
#[derive(Debug, Default)]
pub struct Repositories {
    by_name: BTreeMap<String, Repository>,
}

/// One repository: its tags and every image named in it (by tag or by digest).
#[derive(Debug, Default)]
pub struct Repository {
    /// Tag → image ID.
    pub tags: BTreeMap<String, String>,
    /// IDs of the images named in this repository, in store order.
    pub images: Vec<String>,
}

impl Repositories {
    /// The repositories `images` are named in. A name whose repository is not a valid
    /// distribution-spec path (a registry part with a port, `host:5000/x`, say) cannot be asked
    /// for in a URL and is left out.
    pub fn of(images: &[Image]) -> Repositories {
        let mut by_name: BTreeMap<String, Repository> = BTreeMap::new();
        for image in images {
            for name in image
                .record
                .names
                .iter()
                .filter_map(|n| ImageName::parse(n))
            {
                let repository = name.repository();
                if !is_repository_name(&repository) {
                    continue;
                }
                let entry = by_name.entry(repository).or_default();
                if !entry.images.iter().any(|id| id == image.id()) {
                    entry.images.push(image.id().to_owned());
                }
                if let Some(tag) = name.tag {
                    entry.tags.insert(tag, image.id().to_owned());
                }
            }
        }
        Repositories { by_name }
    }

    pub fn get(&self, name: &str) -> Option<&Repository> {
        self.by_name.get(name)
    }

    /// Repository names in lexical order (the catalog's order).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// Whether `name` is a repository name the distribution spec allows in a URL:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn is_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    // Between alphanumeric runs: one `.`, one or two `_`, or any number of `-`.
    let mut i = 0;
    while i < bytes.len() {
        if alphanumeric(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alphanumeric(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::images::ImageRecord;

    fn image(id: &str, names: &[&str]) -> Image {
        Image {
            record: ImageRecord {
                id: id.into(),
                names: names.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            },
            store_index: 0,
            read_only: false,
        }
    }

    #[test]
    fn names_without_their_tags_are_the_repositories() {
        let images = [
            image("a", &["localhost/app:1", "localhost/app:latest"]),
            image(
                "b",
                &["docker.io/library/busybox:latest", "localhost/app:2"],
            ),
            image("c", &["quay.io/x/y@sha256:00ff", "host:5000/skipped:1"]),
        ];
        let repositories = Repositories::of(&images);
        let names: Vec<_> = repositories.names().collect();
        assert_eq!(
            names,
            ["docker.io/library/busybox", "localhost/app", "quay.io/x/y"]
        );
        let app = repositories.get("localhost/app").unwrap();
        assert_eq!(app.images, ["a", "b"]);
        assert_eq!(
            app.tags.iter().collect::<Vec<_>>(),
            [
                (&"1".to_string(), &"a".to_string()),
                (&"2".to_string(), &"b".to_string()),
                (&"latest".to_string(), &"a".to_string())
            ]
        );
        assert!(repositories.get("quay.io/x/y").unwrap().tags.is_empty());
    }

    #[test]
    fn repository_names_follow_the_distribution_grammar() {
        for good in [
            "a",
            "a/b",
            "a.b/c__d/e---f",
            "localhost/app",
            "docker.io/library/x",
        ] {
            assert!(is_repository_name(good), "{good}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a:1", "a/../b",
        ] {
            assert!(!is_repository_name(bad), "{bad}");
        }
    }
}

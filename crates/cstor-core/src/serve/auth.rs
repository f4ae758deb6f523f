//! HTTP basic auth against an htpasswd file of bcrypt entries — what `htpasswd -B` writes and
//! what Distribution's registry accepts (it refuses the file's older MD5, SHA-1 and crypt forms,
//! and so does this).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// `htpasswd -B`'s default cost, used for the hash an unknown user is checked against, so that
/// a wrong name takes as long to refuse as a wrong password.
const DEFAULT_COST: u32 = 5;

fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| bcrypt::hash("", DEFAULT_COST).unwrap_or_default())
}

/// The users of an htpasswd file.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    /// SHA-256 of `Authorization` values already verified: bcrypt is slow on purpose, and a
    /// client sends the same header with every request of a pull.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Htpasswd {
    /// Reads `user:hash` lines; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Htpasswd> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut users = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| {
                Error::InvalidArgument(format!("{}:{}: {why}", path.display(), number + 1))
            };
            let (user, hash) = line.split_once(':').ok_or_else(|| bad("not user:hash"))?;
            if !["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p)) {
                return Err(bad("only bcrypt entries (htpasswd -B) are supported"));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        if users.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{}: no users",
                path.display()
            )));
        }
        Ok(Htpasswd {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The user an `Authorization: Basic …` header proves to be, or `None`.
    pub fn check(&self, authorization: Option<&str>) -> Option<String> {
        let (scheme, credentials) = authorization?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, password) = decoded.split_once(':')?;
        let key: [u8; 32] = Sha256::digest(decoded.as_bytes()).into();
        let verified = || self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified().contains(&key) {
            return Some(user.to_owned());
        }
        let hash = self.users.get(user);
        let against: &str = match hash {
            Some(hash) => hash,
            None => unknown_user_hash(),
        };
        let ok = bcrypt::verify(password, against).unwrap_or(false);
        if !(ok && hash.is_some()) {
            return None;
        }
        verified().insert(key);
        Some(user.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn bcrypt_entries_check_and_other_forms_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("htpasswd");
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        std::fs::write(&file, format!("# users\n\nalice:{hash}\n")).unwrap();
        let users = Htpasswd::load(&file).unwrap();
        assert_eq!(
            users.check(Some(&basic("alice:s3cret"))).as_deref(),
            Some("alice")
        );
        // Again, from what was remembered.
        assert_eq!(
            users.check(Some(&basic("alice:s3cret"))).as_deref(),
            Some("alice")
        );
        assert_eq!(users.check(Some(&basic("alice:wrong"))), None);
        assert_eq!(users.check(Some(&basic("bob:s3cret"))), None);
        assert_eq!(users.check(Some("Bearer x")), None);
        assert_eq!(users.check(Some("Basic !!!")), None);
        assert_eq!(users.check(None), None);

        std::fs::write(&file, "alice:$apr1$abc$def\n").unwrap();
        let err = Htpasswd::load(&file).unwrap_err();
        assert!(err.to_string().contains(":1: only bcrypt"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        assert_eq!(Htpasswd::load(&file).unwrap_err().code(), "EINVAL");
    }
}

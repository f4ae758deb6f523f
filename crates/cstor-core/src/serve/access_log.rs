//! One access-log line per request, in the shape of the Common Log Format that web servers
//! write (with an RFC 3339 time, the user agent, the duration, and why a transfer broke off).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// What the server did for one request.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    pub time: SystemTime,
    pub remote: SocketAddr,
    /// The user basic auth proved, if any.
    pub user: Option<String>,
    pub method: String,
    /// The request target, query included.
    pub target: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub user_agent: Option<String>,
    pub duration: Duration,
    /// Why the response broke off (the client left, the layer changed, ...), if it did.
    pub error: Option<String>,
}

/// Receives each request's entry, from the thread that served it.
pub type AccessLog = std::sync::Arc<dyn Fn(&AccessEntry) + Send + Sync>;

impl AccessEntry {
    /// `REMOTE - USER [TIME] "METHOD TARGET" STATUS BYTES "USER-AGENT" SECONDSs [error: …]`.
    pub fn line(&self) -> String {
        let since_epoch = self
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let millis = since_epoch.subsec_millis() * 1_000_000;
        let time = crate::time::rfc3339(since_epoch.as_secs() as i64, millis);
        let mut line = format!(
            "{} - {} [{time}] \"{} {}\" {} {} \"{}\" {:.3}s",
            self.remote.ip(),
            self.user.as_deref().unwrap_or("-"),
            printable(&self.method),
            printable(&self.target),
            self.status,
            self.bytes,
            printable(self.user_agent.as_deref().unwrap_or("-")),
            self.duration.as_secs_f64(),
        );
        if let Some(error) = &self.error {
            line.push_str(" error: ");
            line.push_str(&printable(error));
        }
        line
    }
}

/// Text from the client, with quotes and control characters escaped so that one request stays
/// one line that cannot forge another.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => format!("\\x{:02x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_per_request_that_a_client_cannot_break() {
        let entry = AccessEntry {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_558_697_602),
            remote: "127.0.0.1:41000".parse().unwrap(),
            user: Some("alice".into()),
            method: "GET".into(),
            target: "/v2/a\"b\n/blobs/x".into(),
            status: 200,
            bytes: 42,
            user_agent: Some("skopeo/1.9.3".into()),
            duration: Duration::from_millis(1500),
            error: None,
        };
        assert_eq!(
            entry.line(),
            "127.0.0.1 - alice [2026-11-24T22:18:17.602Z] \"GET /v2/a\\\"b\\x0a/blobs/x\" 200 42 \"skopeo/1.9.3\" 1.500s"
        );
    }
}

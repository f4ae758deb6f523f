//! Docker's credential-helper protocol, as containers/image speaks it through
//! docker-credential-helpers' client: `docker-credential-NAME get|store|erase`, found on `PATH`.
//! `get` and `erase` read the server (`host[:port]`) on standard input; `get` answers
//! `{"ServerURL", "Username", "Secret"}` on standard output, where the user `<token>` means the
//! secret is an identity token; `store` reads that JSON. A helper that fails with the output
//! `credentials not found in native keychain` has no credentials for the server.

use std::io::Write;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const NOT_FOUND: &str = "credentials not found in native keychain";

/// What `get` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HelperCredentials {
    #[serde(rename = "ServerURL", default)]
    pub server_url: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub secret: String,
}

/// The credentials `helper` has for `server`; `None` when it has none.
pub(crate) fn get(helper: &str, server: &str) -> Result<Option<HelperCredentials>> {
    match run(helper, "get", server.as_bytes())? {
        Ok(out) => {
            let mut answer: HelperCredentials = serde_json::from_slice(&out)
                .map_err(|e| failed(helper, "get", &format!("its answer is not JSON: {e}")))?;
            answer.server_url = server.to_owned();
            Ok(Some(answer))
        }
        Err(message) if message == NOT_FOUND => Ok(None),
        Err(message) => Err(failed(helper, "get", &message)),
    }
}

/// Stores credentials for `server` in `helper`.
pub(crate) fn store(helper: &str, server: &str, username: &str, secret: &str) -> Result<()> {
    let input = serde_json::to_vec(&HelperCredentials {
        server_url: server.to_owned(),
        username: username.to_owned(),
        secret: secret.to_owned(),
    })
    .map_err(|e| failed(helper, "store", &e.to_string()))?;
    run(helper, "store", &input)?.map_err(|message| failed(helper, "store", &message))?;
    Ok(())
}

/// Erases `server`'s credentials from `helper`; `false` when it had none.
pub(crate) fn erase(helper: &str, server: &str) -> Result<bool> {
    match run(helper, "erase", server.as_bytes())? {
        Ok(_) => Ok(true),
        Err(message) if message == NOT_FOUND => Ok(false),
        Err(message) => Err(failed(helper, "erase", &message)),
    }
}

/// Runs the helper with `input`: its standard output, or (when it fails) that output trimmed.
fn run(helper: &str, verb: &str, input: &[u8]) -> Result<std::result::Result<Vec<u8>, String>> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::Remote {
            code: "EACCES",
            message: format!("credential helper {program}: {e}"),
        })?;
    // A helper that exits without reading its input closes the pipe: its exit status tells.
    let _ = child.stdin.take().map(|mut stdin| stdin.write_all(input));
    let output = child.wait_with_output().map_err(|e| Error::Remote {
        code: "EACCES",
        message: format!("credential helper {program}: {e}"),
    })?;
    Ok(match output.status.success() {
        true => Ok(output.stdout),
        false => Err(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
    })
}

fn failed(helper: &str, verb: &str, message: &str) -> Error {
    Error::Remote {
        code: "EACCES",
        message: format!("credential helper docker-credential-{helper} {verb} failed: {message}"),
    }
}

//! HTTP with one repository of a registry, as containers/image's `dockerClient` speaks it.
//!
//! - TLS: certs.d's CAs and client certificate for the host ([`super::certs`]); verification
//!   off for an `insecure` endpoint or `--tls-verify=false`, which then also allows plain HTTP.
//! - The first request pings `/v2/` over HTTPS, and over HTTP when verification is off and
//!   HTTPS failed: the scheme that answered is the one used.
//! - A request that gets `401` with `WWW-Authenticate: Basic` is sent again with the user's
//!   credentials; with `Bearer realm=…,service=…,scope=…` a token is fetched from the realm —
//!   with the credentials when there are some, anonymously otherwise (Docker's token protocol),
//!   or by an OAuth2 `refresh_token` grant when the credentials are an identity token — and
//!   the request sent again with it. A registry that still refuses, or a token server that
//!   refuses the credentials, is `EACCES`.

use std::io::Read;

use base64::Engine;
use serde_json::Value;
use ureq::http::{Method, Request, Response};
use ureq::Body;

use crate::error::{Error, Result};
use crate::transport::read_limited;
use crate::transport::registry::certs;
use crate::transport::registry::credentials::Credentials;
use crate::transport::registry::Reference;
use crate::transport::system_context::SystemContext;

/// How long a connection may take to open; an unreachable registry fails, it does not hang.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A client of one repository.
pub(crate) struct Client {
    agent: ureq::Agent,
    /// `scheme://host`.
    origin: String,
    pub reference: Reference,
    credentials: Option<Credentials>,
    /// `pull`, or `pull,push`: the access asked of a token server.
    actions: &'static str,
    /// The `Authorization` header that worked last.
    authorization: Option<String>,
}

impl Client {
    /// A client of `reference`'s repository, for pulling or (`push`) pushing, with
    /// `credentials`. `insecure` is registries.conf's setting for the endpoint, which
    /// `ctx.tls_verify` overrides when set. Pings the registry.
    pub fn connect(
        ctx: &SystemContext,
        reference: Reference,
        insecure: bool,
        credentials: Option<Credentials>,
        push: bool,
    ) -> Result<Client> {
        let verify = ctx.tls_verify.unwrap_or(!insecure);
        let tls = certs::tls_config(ctx, &reference.domain, verify)?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .tls_config(tls)
            .build();
        let mut client = Client {
            agent: config.into(),
            origin: String::new(),
            reference,
            credentials,
            actions: if push { "pull,push" } else { "pull" },
            authorization: None,
        };
        let https = client.ping("https");
        client.origin = match https {
            Ok(origin) => origin,
            Err(_) if !verify => client.ping("http").map_err(|e| client.unreachable(e))?,
            Err(e) => return Err(client.unreachable(e)),
        };
        Ok(client)
    }

    /// `scheme://host` when `GET /v2/` answers 200 or 401 there.
    fn ping(&self, scheme: &str) -> Result<String> {
        let origin = format!("{scheme}://{}", self.reference.host);
        let url = format!("{origin}/v2/");
        let response = self.agent.get(&url).call().map_err(|e| remote(&url, e))?;
        match response.status().as_u16() {
            200 | 401 => Ok(origin),
            _ => Err(unexpected(&url, response)),
        }
    }

    fn unreachable(&self, e: Error) -> Error {
        Error::Remote {
            code: match e.code() {
                "EACCES" => "EACCES",
                _ => "EREMOTE",
            },
            message: format!("pinging container registry {}: {e}", self.reference.host),
        }
    }

    /// Whether `GET /v2/` succeeds with the credentials (`podman login`'s check).
    pub fn check_auth(&mut self) -> Result<()> {
        let url = format!("{}/v2/", self.origin);
        let response = self.send(Method::GET, &url, &[], &[])?;
        match response.status().as_u16() {
            200 => Ok(()),
            _ => Err(unexpected(&url, response)),
        }
    }

    /// The URL of `tail` in the repository (`blobs/…`, `manifests/…`).
    pub fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.origin, self.reference.repository)
    }

    /// `scheme://host`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// An absolute URL for a `Location` header, which may be relative to the registry.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.origin())
        }
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// The `Authorization` header that worked last, for a request sent outside [`Client::send`].
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// Sends a request with `body`, authenticating as the registry asks. Any status but `401`
    /// and `403` is the caller's to judge.
    pub fn send(
        &mut self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response<Body>> {
        let mut challenged = false;
        loop {
            let mut request = Request::builder().method(method.clone()).uri(url);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(authorization) = &self.authorization {
                request = request.header("Authorization", authorization);
            }
            let request = request
                .body(body.to_vec())
                .map_err(|e| Error::InvalidArgument(format!("{url}: {e}")))?;
            let response = self.agent.run(request).map_err(|e| remote(url, e))?;
            match response.status().as_u16() {
                401 if !challenged => {
                    challenged = true;
                    let challenge = header(&response, "www-authenticate").unwrap_or_default();
                    self.authorization = Some(self.answer(&challenge)?);
                }
                401 | 403 => return Err(refused(url, response)),
                _ => return Ok(response),
            }
        }
    }

    /// The `Authorization` header that answers a `WWW-Authenticate` challenge.
    fn answer(&self, challenge: &str) -> Result<String> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.credentials {
                Some(credentials) => Ok(basic(credentials)),
                None => Err(self.no_credentials()),
            },
            "bearer" => self.token(params),
            _ => Err(Error::Remote {
                code: "EACCES",
                message: format!(
                    "{}: the registry asks for an authentication cstor does not speak: {challenge:?}",
                    self.origin
                ),
            }),
        }
    }

    fn no_credentials(&self) -> Error {
        Error::Remote {
            code: "EACCES",
            message: format!(
                "{}: the registry wants credentials and none are stored for {} (cstor login or podman login, an entry in $REGISTRY_AUTH_FILE, ${{XDG_RUNTIME_DIR}}/containers/auth.json or ~/.docker/config.json, or a credential helper)",
                self.origin,
                self.reference.location()
            ),
        }
    }

    /// A bearer token from the realm of a `Bearer realm="…",service="…",scope="…"` challenge,
    /// for the access the challenge names plus this client's own.
    fn token(&self, params: &str) -> Result<String> {
        let field = |key: &str| challenge_field(params, key);
        let realm = field("realm").ok_or_else(|| Error::Remote {
            code: "EREMOTE",
            message: format!("a bearer challenge without a realm: {params}"),
        })?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(service) = field("service") {
            query.push(("service", service));
        }
        let asked = field("scope").unwrap_or_default();
        let own = (!self.reference.repository.is_empty())
            .then(|| format!("repository:{}:{}", self.reference.repository, self.actions));
        for scope in asked.split(' ').filter(|s| !s.is_empty()) {
            if Some(scope) != own.as_deref() {
                query.push(("scope", scope.to_owned()));
            }
        }
        if let Some(own) = own {
            query.push(("scope", own));
        }
        let identity_token = self
            .credentials
            .as_ref()
            .and_then(|c| c.identity_token.as_deref());
        let response = match identity_token {
            // OAuth2 (docs/registry/spec/auth/oauth): the refresh token buys an access token.
            Some(token) => {
                query.push(("grant_type", "refresh_token".into()));
                query.push(("refresh_token", token.to_owned()));
                query.push(("client_id", "containers/image".into()));
                self.agent.post(&realm).send_form(query)
            }
            None => {
                let mut request = self.agent.get(&realm);
                if let Some(credentials) = &self.credentials {
                    if !credentials.username.is_empty() {
                        request = request.query("account", &credentials.username);
                    }
                }
                for (key, value) in &query {
                    request = request.query(*key, value);
                }
                if let Some(credentials) = &self.credentials {
                    request = request.header("Authorization", &basic(credentials));
                }
                request.call()
            }
        }
        .map_err(|e| remote(&realm, e))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 if self.credentials.is_some() => {
                return Err(Error::Remote {
                    code: "EACCES",
                    message: format!(
                        "{realm}: the token server refused the credentials stored for {}",
                        self.reference.location()
                    ),
                })
            }
            401 | 403 => return Err(self.no_credentials()),
            status => {
                return Err(Error::Remote {
                    code: "EREMOTE",
                    message: format!("{realm}: HTTP {status} for a token"),
                })
            }
        }
        let body = read_limited(response.into_body().into_reader(), "token")?;
        let json: Value = serde_json::from_slice(&body).unwrap_or_default();
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(Value::as_str)
            .map(|token| format!("Bearer {token}"))
            .ok_or_else(|| Error::Remote {
                code: "EREMOTE",
                message: format!("{realm} gave no token"),
            })
    }
}

/// A value of a `key="value"` list in a challenge.
fn challenge_field(params: &str, key: &str) -> Option<String> {
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if name.trim().eq_ignore_ascii_case(key) {
            return Some(value.to_owned());
        }
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    None
}

fn basic(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.username, credentials.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

pub(crate) fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A transport failure: the registry could not be reached or the connection broke.
pub(crate) fn remote(url: &str, e: ureq::Error) -> Error {
    Error::Remote {
        code: "EREMOTE",
        message: format!("{url}: {e}"),
    }
}

fn refused(url: &str, response: Response<Body>) -> Error {
    let status = response.status().as_u16();
    Error::Remote {
        code: "EACCES",
        message: format!(
            "{url}: HTTP {status}, access refused{}",
            registry_message(response)
        ),
    }
}

/// An unexpected answer, with what the registry's error body says.
pub(crate) fn unexpected(url: &str, response: Response<Body>) -> Error {
    let status = response.status().as_u16();
    if status == 404 {
        return Error::NoImage {
            reference: url.to_owned(),
        };
    }
    Error::Remote {
        code: "EREMOTE",
        message: format!("{url}: HTTP {status}{}", registry_message(response)),
    }
}

/// `: CODE message` from the distribution spec's error body, when there is one.
fn registry_message(response: Response<Body>) -> String {
    let mut body = Vec::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(64 << 10)
        .read_to_end(&mut body);
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    match json.pointer("/errors/0") {
        Some(error) => format!(
            ": {} {}",
            error.get("code").and_then(Value::as_str).unwrap_or(""),
            error.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_as_registries_write_them() {
        let params = r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a:pull repository:b:pull,push""#;
        assert_eq!(
            challenge_field(params, "realm").as_deref(),
            Some("https://auth.docker.io/token")
        );
        assert_eq!(
            challenge_field(params, "scope").as_deref(),
            Some("repository:a:pull repository:b:pull,push")
        );
        assert_eq!(challenge_field(r#"realm="x""#, "service"), None);
        assert_eq!(
            challenge_field("realm=plain, service=s", "service").as_deref(),
            Some("s")
        );
    }
}

//! Who is asking: bearer tokens naming clients (tenants), so that one
//! client cannot use or probe another's registered keys, and quotas can be
//! counted per client.
//!
//! A token file holds one `CLIENT TOKEN` pair per line (`#` starts a
//! comment). The server keeps only the tokens' SHA-256 digests, and compares
//! digests without an early exit, so neither memory nor timing gives a token
//! away. Without a token file the server is open: every request is the
//! anonymous client, which `serve` allows only on loopback addresses unless
//! told otherwise (docs/SECURITY.md, "Threat model").

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Result, ServerError};

/// The fewest characters a token may have: 32 hex digits carry 128 bits,
/// the level of the encryption itself.
pub const MIN_TOKEN_CHARS: usize = 32;

/// The most clients a token file may name (every request compares against
/// each, so the table stays small).
pub const MAX_CLIENTS: usize = 4096;

/// The client a request comes from: a name from the token file, or the
/// anonymous client of an open server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tenant(Option<Arc<str>>);

impl Tenant {
    /// The one client of a server without tokens.
    pub fn anonymous() -> Self {
        Self(None)
    }

    /// A named client.
    pub fn named(name: &str) -> Self {
        Self(Some(name.into()))
    }

    /// The name, if authenticated.
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The id under which this client's key `key_id` is stored, cached and
    /// counted. The anonymous client's ids are the keys' own digests (what
    /// an open server has always stored); a named client's are a digest of
    /// its name and the key id, so that two clients registering the same
    /// bytes hold two entries and neither can reach the other's.
    pub fn scoped_key_id(&self, key_id: &str) -> String {
        match &self.0 {
            None => key_id.to_string(),
            Some(name) => {
                let mut h = Sha256::new();
                h.update(b"heman tenant key\0");
                h.update((name.len() as u64).to_le_bytes());
                h.update(name.as_bytes());
                h.update(key_id.as_bytes());
                hex::encode(h.finalize())
            }
        }
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("anonymous"),
            Some(name) => write!(f, "client '{name}'"),
        }
    }
}

/// Why a token file is refused (the server does not start).
#[derive(Debug, thiserror::Error)]
#[error("token file {path}: {message}")]
pub struct TokenFileError {
    /// The file.
    pub path: String,
    /// What is wrong, with the line.
    pub message: String,
}

/// The clients a server knows, by the digests of their tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    clients: Vec<([u8; 32], Tenant)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: even digests stay out of logs.
        let names: Vec<_> = self.clients.iter().map(|(_, t)| t.to_string()).collect();
        f.debug_struct("Tokens").field("clients", &names).finish()
    }
}

impl Tokens {
    /// Reads a token file (`CLIENT TOKEN` per line).
    pub fn load(path: &Path) -> std::result::Result<Self, TokenFileError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| TokenFileError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?);
        Self::parse(&text).map_err(|message| TokenFileError {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses a token file's text; the error names the line.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut tokens = Self::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |m: &str| format!("line {}: {m}", number + 1);
            let mut words = line.split_whitespace();
            let (Some(name), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(at("expected `CLIENT TOKEN`"));
            };
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
            {
                return Err(at(&format!(
                    "client name '{name}': use letters, digits and - _ . @"
                )));
            }
            tokens.add(name, token).map_err(|m| at(&m))?;
        }
        if tokens.clients.is_empty() {
            return Err("names no client: one `CLIENT TOKEN` pair per line".into());
        }
        Ok(tokens)
    }

    /// Adds a client and its token.
    pub fn add(&mut self, name: &str, token: &str) -> std::result::Result<(), String> {
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "the token of '{name}' has fewer than {MIN_TOKEN_CHARS} characters (make one with `openssl rand -hex 32`)"
            ));
        }
        if self.clients.len() >= MAX_CLIENTS {
            return Err(format!("more than {MAX_CLIENTS} clients"));
        }
        let digest = token_digest(token);
        if self.clients.iter().any(|(_, t)| t.name() == Some(name)) {
            return Err(format!("client '{name}' named twice"));
        }
        if self.clients.iter().any(|(d, _)| same(d, &digest)) {
            return Err("two clients share a token".into());
        }
        self.clients.push((digest, Tenant::named(name)));
        Ok(())
    }

    /// The client whose token `presented` is, if any. Every entry is
    /// compared, each without an early exit.
    pub fn client(&self, presented: &str) -> Option<Tenant> {
        let digest = token_digest(presented);
        let mut found = None;
        for (d, tenant) in &self.clients {
            if same(d, &digest) {
                found = Some(tenant.clone());
            }
        }
        found
    }

    /// How many clients.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Whether no client is known.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equality of two digests in time independent of where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// How a server decides who asks.
#[derive(Clone, Debug, Default)]
pub enum Authentication {
    /// Everyone is the anonymous client.
    #[default]
    Open,
    /// A bearer token from the file is required.
    Tokens(Arc<Tokens>),
}

impl Authentication {
    /// The client behind an `Authorization` header's value (`Bearer TOKEN`;
    /// gRPC sends the same in its `authorization` metadata).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Tenant> {
        let tokens = match self {
            Self::Open => return Ok(Tenant::anonymous()),
            Self::Tokens(tokens) => tokens,
        };
        let presented = authorization
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| {
                ServerError::Unauthenticated(
                    "this server needs a bearer token (Authorization: Bearer TOKEN; `heman query --token`)".into(),
                )
            })?;
        tokens
            .client(presented)
            .ok_or_else(|| ServerError::Unauthenticated("the bearer token is not known".into()))
    }

    /// Whether requests must carry a token.
    pub fn required(&self) -> bool {
        matches!(self, Self::Tokens(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "0123456789abcdef0123456789abcdef";
    const BOB: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_name_their_clients_and_nothing_else_passes() {
        let auth = Authentication::Tokens(Arc::new(
            Tokens::parse(&format!("# clients\nalice {ALICE}\n\nbob {BOB} # ops\n")).unwrap(),
        ));
        let who = |h: &str| auth.authenticate(Some(h));
        assert_eq!(
            who(&format!("Bearer {ALICE}")).unwrap(),
            Tenant::named("alice")
        );
        assert_eq!(
            who(&format!("bearer  {BOB}")).unwrap(),
            Tenant::named("bob")
        );
        for refused in [
            format!("Bearer {ALICE}x"),
            format!("Basic {ALICE}"),
            ALICE.to_string(),
            "Bearer ".into(),
        ] {
            let e = who(&refused).unwrap_err();
            assert!(
                matches!(e, ServerError::Unauthenticated(_)),
                "{refused}: {e}"
            );
        }
        assert!(auth.authenticate(None).is_err());
        assert_eq!(
            Authentication::Open.authenticate(None).unwrap(),
            Tenant::anonymous()
        );
    }

    #[test]
    fn weak_duplicate_and_malformed_token_files_are_refused() {
        for (text, says) in [
            ("alice short", "fewer than 32"),
            (
                &format!("alice {ALICE}\nalice {BOB}") as &str,
                "named twice",
            ),
            (&format!("alice {ALICE}\nbob {ALICE}"), "share a token"),
            (&format!("al/ice {ALICE}"), "client name"),
            (&format!("alice {ALICE} extra"), "line 1"),
            ("# nothing\n", "names no client"),
        ] {
            let e = Tokens::parse(text).err().unwrap_or_default();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn clients_hold_their_keys_apart() {
        let id = "ab".repeat(32);
        let (alice, bob) = (Tenant::named("alice"), Tenant::named("bob"));
        assert_eq!(Tenant::anonymous().scoped_key_id(&id), id);
        assert_ne!(alice.scoped_key_id(&id), bob.scoped_key_id(&id));
        assert!(crate::keystore::valid_id(&alice.scoped_key_id(&id)));
        // The name's length is hashed: no two (name, id) pairs collide by
        // moving characters between them.
        assert_ne!(
            Tenant::named("a").scoped_key_id(&format!("b{}", &id[1..])),
            Tenant::named("ab").scoped_key_id(&id[1..])
        );
    }
}

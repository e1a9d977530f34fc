//! Bearer tokens: `http.token` for the commands, `http.read_token` (optional) for the reads.
//!
//! Tokens are never compared as strings. At start the collector draws a random key and keeps
//! HMAC-SHA256(key, token) of each configured token; a presented token is hashed the same way and
//! the two 32-byte tags are compared in constant time (`Mac::verify_slice`). So neither how much
//! of a token matched nor its length shows in the answer's timing.

use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Tag = [u8; 32];

/// Why a request may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `http.token` is configured: commands are off (403).
    Disabled,
    /// No bearer token, or not the right one (401).
    Unauthorised,
}

/// The configured tokens, kept only as keyed hashes.
pub struct Tokens {
    key: [u8; 32],
    command: Option<Tag>,
    read: Option<Tag>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("command", &self.command.is_some())
            .field("read", &self.read.is_some())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// `command` is `http.token`, `read` is `http.read_token`.
    pub fn new(command: Option<&str>, read: Option<&str>) -> Self {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let mut tokens = Self {
            key,
            command: None,
            read: None,
        };
        tokens.command = command.map(|t| tokens.tag(t.as_bytes()));
        tokens.read = read.map(|t| tokens.tag(t.as_bytes()));
        tokens
    }

    /// May this request run a command?
    pub fn command(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(command) = &self.command else {
            return Err(Refusal::Disabled);
        };
        match bearer(headers) {
            Some(given) if self.is(given, command) => Ok(()),
            _ => Err(Refusal::Unauthorised),
        }
    }

    /// May this request read the API? Always, without a read token; else with the read token
    /// or the command token.
    pub fn read(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(read) = &self.read else {
            return Ok(());
        };
        let Some(given) = bearer(headers) else {
            return Err(Refusal::Unauthorised);
        };
        // Both comparisons always run, so timing does not tell which token was given.
        let as_read = self.is(given, read);
        let as_command = self.command.as_ref().is_some_and(|c| self.is(given, c));
        if as_read | as_command {
            Ok(())
        } else {
            Err(Refusal::Unauthorised)
        }
    }

    fn mac(&self) -> Option<Hmac<Sha256>> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        Hmac::<Sha256>::new_from_slice(&self.key).ok()
    }

    fn tag(&self, token: &[u8]) -> Tag {
        let Some(mut mac) = self.mac() else {
            return [0; 32];
        };
        mac.update(token);
        let mut tag = [0; 32];
        tag.copy_from_slice(&mac.finalize().into_bytes());
        tag
    }

    /// Constant-time: the presented token's tag against `expected`.
    fn is(&self, given: &[u8], expected: &Tag) -> bool {
        let Some(mut mac) = self.mac() else {
            return false;
        };
        mac.update(given);
        mac.verify_slice(expected).is_ok()
    }
}

/// The token of an `Authorization: Bearer …` header (the scheme in any case, RFC 9110 § 11.1).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then_some(token)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const COMMAND: &str = "command-token-0123456789";
    const READ: &str = "read-token-0123456789";

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn commands_need_the_command_token_and_are_off_without_one() {
        let tokens = Tokens::new(Some(COMMAND), Some(READ));
        assert_eq!(tokens.command(&with(&format!("Bearer {COMMAND}"))), Ok(()));
        assert_eq!(tokens.command(&with(&format!("bearer {COMMAND}"))), Ok(()));
        for wrong in [
            format!("Bearer {READ}"),
            format!("Bearer {COMMAND}x"),
            format!("Bearer {}", &COMMAND[..10]),
            "Bearer ".to_string(),
            format!("Basic {COMMAND}"),
            COMMAND.to_string(),
        ] {
            assert_eq!(
                tokens.command(&with(&wrong)),
                Err(Refusal::Unauthorised),
                "{wrong}"
            );
        }
        assert_eq!(
            tokens.command(&HeaderMap::new()),
            Err(Refusal::Unauthorised)
        );
        let off = Tokens::new(None, Some(READ));
        assert_eq!(
            off.command(&with(&format!("Bearer {COMMAND}"))),
            Err(Refusal::Disabled)
        );
    }

    #[test]
    fn reads_are_open_without_a_read_token_else_need_either_token() {
        let open = Tokens::new(Some(COMMAND), None);
        assert_eq!(open.read(&HeaderMap::new()), Ok(()));
        let guarded = Tokens::new(Some(COMMAND), Some(READ));
        assert_eq!(guarded.read(&with(&format!("Bearer {READ}"))), Ok(()));
        assert_eq!(guarded.read(&with(&format!("Bearer {COMMAND}"))), Ok(()));
        assert_eq!(guarded.read(&HeaderMap::new()), Err(Refusal::Unauthorised));
        assert_eq!(
            guarded.read(&with("Bearer not-the-token-at-all")),
            Err(Refusal::Unauthorised)
        );
        let read_only = Tokens::new(None, Some(READ));
        assert_eq!(read_only.read(&with(&format!("Bearer {READ}"))), Ok(()));
    }

    #[test]
    fn debug_shows_no_token() {
        let shown = format!("{:?}", Tokens::new(Some(COMMAND), Some(READ)));
        assert!(!shown.contains(COMMAND) && !shown.contains(READ), "{shown}");
    }
}

//! Tokens: how they are made, stored (sha256 only) and read from whatever header a format's
//! client uses. Plugins never see a credential; the host strips it and passes a principal name.

use axum::http::HeaderMap;
use base64::Engine as _;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::store::db::TokenRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Publish,
    Admin,
    Runner,
    /// Plays manual pipeline jobs (approves a gated version); implies nothing else but `read`.
    Approve,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "publish" => Some(Scope::Publish),
            "admin" => Some(Scope::Admin),
            "runner" => Some(Scope::Runner),
            "approve" => Some(Scope::Approve),
            _ => None,
        }
    }

    /// Parses `read,publish`, refusing unknown scopes.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, String> {
        s.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                Scope::parse(p)
                    .ok_or_else(|| format!("unknown scope `{}` (read, publish, admin, runner, approve)", p.trim()))
            })
            .collect()
    }
}

/// Who a request is, from a valid token.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Limited to this repository, if set.
    pub repository: Option<String>,
    pub kind: String,
}

impl Principal {
    pub fn from_row(row: TokenRow) -> Principal {
        Principal {
            token_id: row.id,
            scopes: Scope::parse_list(&row.scopes).unwrap_or_default(),
            name: row.name,
            repository: row.repository,
            kind: row.kind,
        }
    }

    /// Whether this token grants `scope` on `repository`. `admin` implies `read` and `publish`;
    /// `publish` implies `read`; `approve` implies `read` (an approver looks at what it approves);
    /// `runner` implies nothing else.
    pub fn allows(&self, scope: Scope, repository: Option<&str>) -> bool {
        if let (Some(mine), Some(theirs)) = (&self.repository, repository) {
            if mine != theirs {
                return false;
            }
        }
        self.scopes.iter().any(|s| match (s, scope) {
            (a, b) if *a == b => true,
            (Scope::Admin, Scope::Read | Scope::Publish | Scope::Approve) => true,
            (Scope::Publish | Scope::Approve, Scope::Read) => true,
            _ => false,
        })
    }

    pub fn is_admin(&self) -> bool {
        self.repository.is_none() && self.scopes.contains(&Scope::Admin)
    }
}

/// A new random token: `sluice_` and 40 characters of base32.
pub fn generate_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    let body: String = (0..40).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("sluice_{body}")
}

/// Parses a token lifetime such as `90d`, `12h` or `2w` into milliseconds.
pub fn parse_lifetime(s: &str) -> Result<i64, String> {
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a lifetime such as 90d or 12h: {e}"))?;
    if d.is_zero() {
        return Err("a token lifetime must be longer than zero".into());
    }
    i64::try_from(d.as_millis()).map_err(|_| format!("`{s}` is too long a lifetime"))
}

/// A token just made: its id and the secret, shown this once.
pub struct IssuedToken {
    pub id: i64,
    pub secret: String,
    pub expires_at: Option<i64>,
}

/// Makes and stores a new token. The one way tokens are made (CLI and API): scopes and lifetime
/// are checked here, the secret is stored only as its hash.
pub fn issue_token(
    db: &crate::store::Db,
    name: &str,
    scopes: &str,
    repository: Option<&str>,
    lifetime: Option<&str>,
) -> Result<IssuedToken, IssueError> {
    if name.trim().is_empty() {
        return Err(IssueError::Invalid("a token needs a name".into()));
    }
    let parsed = Scope::parse_list(scopes).map_err(IssueError::Invalid)?;
    if parsed.is_empty() {
        return Err(IssueError::Invalid(
            "a token needs at least one scope (read, publish, admin, runner, approve)".into(),
        ));
    }
    // A lifetime just short of i64::MAX ms parses, but overflows once added to now.
    let expires_at = lifetime
        .map(|l| {
            parse_lifetime(l).and_then(|ms| {
                crate::store::db::now_ms().checked_add(ms).ok_or_else(|| format!("`{l}` is too long a lifetime"))
            })
        })
        .transpose()
        .map_err(IssueError::Invalid)?;
    let secret = generate_token();
    let id = db
        .insert_token(name, &hash_token(&secret), scopes, repository, "personal", expires_at)
        .map_err(IssueError::Store)?;
    Ok(IssuedToken { id, secret, expires_at })
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(crate::store::DbError),
}

/// A refused token request is the caller's mistake (400); a store failure is the store's.
impl From<IssueError> for AppError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Invalid(msg) => AppError::BadRequest(msg),
            IssueError::Store(e) => e.into(),
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Headers that carry credentials for every client; the host removes them (and the headers a
/// format declares in `credential-headers`) before a plugin sees the request.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// The credential a request carries, wherever its client put it: one of the `extra` headers a
/// format declares (its token alone), `Authorization: Bearer T`, `Authorization: Basic` (the
/// password, or the user name when the password is empty), or a raw `Authorization: T`.
pub fn credential(headers: &HeaderMap, extra: &[String]) -> Option<String> {
    if let Some(key) = extra.iter().find_map(|h| headers.get(h.as_str())).and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_string());
    }
    let auth = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = auth.split_once(' ').unwrap_or(("", auth));
    let value = match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "token" => rest.trim().to_string(),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
            let pair = String::from_utf8(decoded).ok()?;
            let (user, pass) = pair.split_once(':').unwrap_or((&pair, ""));
            if pass.is_empty() {
                user.to_string()
            } else {
                pass.to_string()
            }
        }
        _ => auth.to_string(),
    };
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn reads_every_client_style() {
        let credential = |h: &HeaderMap| super::credential(h, &["x-api-key".to_string()]);
        assert_eq!(credential(&headers(&[("authorization", "Bearer abc")])).as_deref(), Some("abc"));
        assert_eq!(credential(&headers(&[("authorization", "abc")])).as_deref(), Some("abc"));
        // user:token and token: (empty password)
        assert_eq!(credential(&headers(&[("authorization", "Basic dXNlcjphYmM=")])).as_deref(), Some("abc"));
        assert_eq!(credential(&headers(&[("authorization", "Basic YWJjOg==")])).as_deref(), Some("abc"));
        assert_eq!(credential(&headers(&[("x-api-key", "abc")])).as_deref(), Some("abc"));
        assert_eq!(super::credential(&headers(&[("x-api-key", "abc")]), &[]), None, "only declared headers count");
        assert_eq!(credential(&headers(&[])), None);
    }

    #[test]
    fn scopes_imply_and_limit() {
        let p = Principal {
            token_id: 1,
            name: "ci".into(),
            scopes: vec![Scope::Publish],
            repository: Some("libs".into()),
            kind: "personal".into(),
        };
        assert!(p.allows(Scope::Read, Some("libs")));
        assert!(p.allows(Scope::Publish, Some("libs")));
        assert!(!p.allows(Scope::Publish, Some("tools")));
        assert!(!p.allows(Scope::Admin, Some("libs")));
        let r = Principal { scopes: vec![Scope::Runner], repository: None, ..p };
        assert!(!r.allows(Scope::Publish, Some("libs")));
        assert!(Scope::parse_list("read,bogus").is_err());
        let a =
            Principal { scopes: Scope::parse_list("approve").unwrap(), repository: Some("libs".into()), ..r.clone() };
        assert!(a.allows(Scope::Approve, Some("libs")) && a.allows(Scope::Read, Some("libs")));
        assert!(!a.allows(Scope::Approve, Some("tools")), "an approver limited to a repository approves there only");
        assert!(!a.allows(Scope::Publish, Some("libs")) && !a.allows(Scope::Admin, Some("libs")));
        let admin = Principal { scopes: vec![Scope::Admin], repository: None, ..r };
        assert!(admin.allows(Scope::Approve, Some("libs")));
        assert!(generate_token().starts_with("sluice_"));
        assert_eq!(parse_lifetime("90d"), Ok(90 * 24 * 3600 * 1000));
        assert_eq!(parse_lifetime("12h"), Ok(12 * 3600 * 1000));
        assert!(parse_lifetime("0s").is_err());
        assert!(parse_lifetime("soon").is_err());
    }
}

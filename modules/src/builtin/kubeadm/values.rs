//! The values a join takes, each checked when it is read (at seal, or once a run-time
//! reference is filled in): [`Endpoint`], [`BootstrapToken`], [`CaCertHash`].

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, Unexpected};

/// An API server endpoint, `host:port`, whose host is no option (`--flag:6443` is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `host:port`, when it is one: a host that is not empty and does not start with `-`, a
    /// port 0-65535.
    pub fn parse(text: &str) -> Option<Self> {
        let (host, port) = text.rsplit_once(':')?;
        let port = port.parse().ok()?;
        (!host.is_empty() && !host.starts_with('-')).then(|| Self { host: host.to_owned(), port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| {
            let expected = if text.starts_with('-') {
                "host:port, with a host that does not start with '-' (a command would read it as an option)"
            } else {
                "host:port"
            };
            D::Error::invalid_value(Unexpected::Str(&text), &expected)
        })
    }
}

/// A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`. A secret: never shown, not even
/// when it is refused.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken(String);

impl BootstrapToken {
    /// Whether `text` is shaped like a bootstrap token.
    pub fn is_token(text: &str) -> bool {
        let ok = |s: &str, n: usize| {
            s.len() == n && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        };
        text.split_once('.').is_some_and(|(id, secret)| ok(id, 6) && ok(secret, 16))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BootstrapToken(<secret>)")
    }
}

impl<'de> Deserialize<'de> for BootstrapToken {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !Self::is_token(&text) {
            return Err(D::Error::invalid_value(
                Unexpected::Other("another string (not shown: a token is a secret)"),
                &"a bootstrap token like [a-z0-9]{6}.[a-z0-9]{16}",
            ));
        }
        Ok(Self(text))
    }
}

/// `sha256:<64 lowercase hex digits>`: the hash of a cluster CA's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaCertHash(String);

impl CaCertHash {
    /// Whether `text` is shaped like a CA certificate hash.
    pub fn is_hash(text: &str) -> bool {
        text.strip_prefix("sha256:").is_some_and(|hex| {
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CaCertHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !Self::is_hash(&text) {
            return Err(D::Error::invalid_value(Unexpected::Str(&text), &"sha256:<64 lowercase hex digits>"));
        }
        Ok(Self(text))
    }
}

contract::string_schema!(Endpoint, BootstrapToken, CaCertHash);

#[cfg(test)]
mod tests {
    use contract::args::from_value;
    use serde_json::json;

    use super::*;

    fn error<T: serde::de::DeserializeOwned + fmt::Debug>(text: &str) -> String {
        from_value::<T>(json!(text)).unwrap_err().to_string()
    }

    #[test]
    fn an_endpoint_is_host_and_port() {
        let endpoint = from_value::<Endpoint>(json!("10.0.0.1:6443")).unwrap();
        assert_eq!(
            (endpoint.host.as_str(), endpoint.port, endpoint.to_string()),
            ("10.0.0.1", 6443, "10.0.0.1:6443".into())
        );
        assert_eq!(from_value::<Endpoint>(json!("[fd00::1]:6443")).unwrap().host, "[fd00::1]");
        assert_eq!(
            error::<Endpoint>("10.0.0.1"),
            "the arguments must be host:port, got the string \"10.0.0.1\""
        );
        assert_eq!(error::<Endpoint>(":6443"), "the arguments must be host:port, got the string \":6443\"");
        assert_eq!(
            error::<Endpoint>("h:65536"),
            "the arguments must be host:port, got the string \"h:65536\""
        );
        assert_eq!(
            error::<Endpoint>("not-an-ip:xx"),
            "the arguments must be host:port, got the string \"not-an-ip:xx\""
        );
    }

    #[test]
    fn a_refused_token_is_not_shown() {
        assert_eq!(
            from_value::<BootstrapToken>(json!("abcdef.0123456789abcdef")).unwrap().as_str(),
            "abcdef.0123456789abcdef"
        );
        let message = error::<BootstrapToken>("ABCDEF.0123456789abcdef");
        assert_eq!(
            message,
            "the arguments must be a bootstrap token like [a-z0-9]{6}.[a-z0-9]{16}, got another string (not shown: a token is a secret)"
        );
        assert!(
            !format!("{:?}", from_value::<BootstrapToken>(json!("abcdef.0123456789abcdef")).unwrap())
                .contains("abcdef")
        );
    }

    #[test]
    fn a_ca_cert_hash_is_sha256_hex() {
        let hash = format!("sha256:{}", "a".repeat(64));
        assert_eq!(from_value::<CaCertHash>(json!(hash)).unwrap().as_str(), hash);
        assert_eq!(
            error::<CaCertHash>("sha256:ABC"),
            "the arguments must be sha256:<64 lowercase hex digits>, got the string \"sha256:ABC\""
        );
    }
}

//! `Authorization` header values: `Basic base64(user:secret)` and `Bearer token`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The user (or API key) and password (or secret) of a `Basic` header value.
///
/// `None` for any other scheme, bad base64, non-UTF-8 text or a missing `:`.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = strip_scheme(header, "basic")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}

/// The token of a `Bearer` header value; `None` for any other scheme or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let token = strip_scheme(header, "bearer")?.trim();
    (!token.is_empty()).then_some(token)
}

/// The rest of `header` after `scheme` and a space; schemes are case-insensitive (RFC 9110).
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.trim_start().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let header = format!("Basic {}", STANDARD.encode("key-1:se:cret"));
        assert_eq!(
            basic_credentials(&header),
            Some(("key-1".into(), "se:cret".into()))
        );
        let lower = format!("basic {}", STANDARD.encode("a:b"));
        assert_eq!(basic_credentials(&lower), Some(("a".into(), "b".into())));
    }

    #[test]
    fn malformed_basic_values_give_nothing() {
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
        assert_eq!(
            basic_credentials(&format!("Bearer {}", STANDARD.encode("a:b"))),
            None
        );
        assert_eq!(basic_credentials("Basic"), None);
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
    }
}

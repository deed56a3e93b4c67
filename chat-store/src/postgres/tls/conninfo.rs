//! Takes libpq's TLS keys (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) out of a connection
//! string, in either of its forms — a URL (`postgres://…?sslmode=verify-full&…`) or
//! `key=value` pairs — and hands back the rest untouched for tokio-postgres to parse.

use std::path::PathBuf;

use super::{SslMode, TlsOptions};
use crate::StoreError;
use crate::postgres::error::invalid;

/// `(the string without the TLS keys, the TLS keys)`.
pub(crate) fn split(conninfo: &str) -> Result<(String, TlsOptions), StoreError> {
    let mut options = TlsOptions::default();
    let rest = if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        split_url(conninfo, &mut options)?
    } else {
        split_pairs(conninfo, &mut options)?
    };
    Ok((rest, options))
}

/// Records `key=value` when it is a TLS key; `false` for every other key.
fn take(options: &mut TlsOptions, key: &str, value: String) -> Result<bool, StoreError> {
    match key {
        "sslmode" => options.mode = value.parse::<SslMode>()?,
        "sslrootcert" => options.root_cert = Some(PathBuf::from(value)),
        "sslcert" => options.client_cert = Some(PathBuf::from(value)),
        "sslkey" => options.client_key = Some(PathBuf::from(value)),
        _ => return Ok(false),
    }
    Ok(true)
}

fn split_url(url: &str, options: &mut TlsOptions) -> Result<String, StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok(url.to_owned());
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !take(options, &percent_decode(key)?, percent_decode(value)?)? {
            kept.push(pair);
        }
    }
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(format!("bad percent-encoding in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("{s:?} is not UTF-8 once decoded")))
}

/// libpq's `key = value` syntax: pairs separated by spaces, `=` with optional spaces around it,
/// a value in single quotes when it holds spaces, backslash escaping `'` and `\`.
fn split_pairs(conninfo: &str, options: &mut TlsOptions) -> Result<String, StoreError> {
    let mut kept = String::with_capacity(conninfo.len());
    let mut chars = conninfo.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(invalid(format!(
                "expected `=` after {key:?} in the connection string"
            )));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        loop {
            match chars.next() {
                None if quoted => {
                    return Err(invalid(format!(
                        "unterminated quote in the value of {key:?}"
                    )));
                }
                None => break,
                Some((_, '\'')) if quoted => break,
                Some((_, c)) if c.is_whitespace() && !quoted => break,
                Some((_, '\\')) => {
                    if let Some((_, c)) = chars.next() {
                        value.push(c);
                    }
                }
                Some((_, c)) => value.push(c),
            }
        }
        let end = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        if !take(options, &key, value)? {
            kept.push_str(conninfo[start..end].trim_end());
            kept.push(' ');
        }
    }
    Ok(kept.trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(mode: SslMode, root: Option<&str>) -> TlsOptions {
        TlsOptions {
            mode,
            root_cert: root.map(PathBuf::from),
            ..TlsOptions::default()
        }
    }

    #[test]
    fn url_tls_keys_are_taken_out_and_the_rest_kept_in_order() {
        let (rest, options) = split(
            "postgres://u@h:5/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=3",
        )
        .expect("parses");
        assert_eq!(
            rest,
            "postgres://u@h:5/db?application_name=x&connect_timeout=3"
        );
        assert_eq!(options, tls(SslMode::VerifyFull, Some("/tmp/ca.pem")));
    }

    #[test]
    fn url_without_tls_keys_is_unchanged_and_prefers_tls() {
        let url = "postgresql://u@h/db?options=-c%20search_path%3Ds";
        let (rest, options) = split(url).expect("parses");
        assert_eq!(rest, url);
        assert_eq!(options, TlsOptions::default());
        assert_eq!(options.mode, SslMode::Prefer);
    }

    #[test]
    fn key_value_pairs_with_quotes_and_spaces_around_equals() {
        let (rest, options) = split(
            "host=localhost sslmode = verify-ca  sslrootcert='/a dir/ca.pem' user='o\\'brien' sslcert=c.pem sslkey=k.pem",
        )
        .expect("parses");
        assert_eq!(rest, "host=localhost user='o\\'brien'");
        assert_eq!(options.mode, SslMode::VerifyCa);
        assert_eq!(options.root_cert, Some(PathBuf::from("/a dir/ca.pem")));
        assert_eq!(options.client_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(options.client_key, Some(PathBuf::from("k.pem")));
    }

    #[test]
    fn unknown_sslmode_and_broken_strings_are_refused() {
        for bad in [
            "postgres://h/db?sslmode=allow",
            "postgres://h/db?sslmode=verify_full",
            "postgres://h/db?sslrootcert=%zz",
            "host=h sslmode",
            "host=h sslrootcert='/open",
        ] {
            assert!(split(bad).is_err(), "{bad} was accepted");
        }
    }
}

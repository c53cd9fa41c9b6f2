//! htpasswd password hashes as Traefik 3.7's `basicAuth` checks them
//! (its `go-http-auth`): bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`), SHA1
//! (`{SHA}` + base64), and MD5-crypt under any magic (`$apr1$`, `$1$`).
//!
//! Parsing ([`Secret::parse`]) runs when the configuration is checked and
//! refuses what no password can ever match (Traefik accepts such a user
//! and then refuses every request of it); checking ([`Secret::verify`]) is
//! the request path's. A bcrypt check costs milliseconds: callers must not
//! run it on a worker's event loop ([`Secret::is_slow`]). Must not: keep a
//! password, or compare digests in variable time.

use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// A parsed htpasswd hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// bcrypt: the whole 60-byte hash (checked off the event loop).
    Bcrypt(Arc<str>),
    /// `{SHA}`: SHA1 of the password.
    Sha1([u8; 20]),
    /// MD5-crypt: the whole hash, its magic (`$apr1$`, `$1$`) and salt.
    Md5Crypt {
        /// As written: what the computed hash must equal.
        full: String,
        /// `$apr1$`, `$1$`, … with both dollars.
        magic: String,
        /// Between the magic and the digest (used whole, as Go does).
        salt: String,
    },
}

/// The characters crypt's base64 writes, in order.
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Secret {
    /// The hash as an htpasswd file writes it (`{SHA}` re-encoded in
    /// standard base64), as Traefik's API shows a user.
    pub fn as_written(&self) -> String {
        match self {
            Secret::Bcrypt(h) => h.to_string(),
            Secret::Sha1(d) => format!(
                "{{SHA}}{}",
                base64::engine::general_purpose::STANDARD.encode(d)
            ),
            Secret::Md5Crypt { full, .. } => full.clone(),
        }
    }

    /// Reads `hash`, or says why no password can match it.
    pub fn parse(hash: &str) -> Result<Secret, String> {
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            return hash
                .parse::<bcrypt::HashParts>()
                .map(|_| Secret::Bcrypt(Arc::from(hash)))
                .map_err(|e| format!("malformed bcrypt hash: {e}"));
        }
        if let Some(b64) = hash.strip_prefix("{SHA}") {
            let digest = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|d| <[u8; 20]>::try_from(d).ok());
            return digest
                .map(Secret::Sha1)
                .ok_or_else(|| "malformed {SHA} hash: not the base64 of 20 bytes".to_owned());
        }
        // Anything else is read as MD5-crypt: `$magic$salt$digest`.
        let parts: Vec<&str> = hash.splitn(4, '$').collect();
        match parts.as_slice() {
            ["", magic, salt, digest]
                if !magic.is_empty()
                    && digest.len() == 22
                    && digest.bytes().all(|b| ITOA64.contains(&b)) =>
            {
                Ok(Secret::Md5Crypt {
                    full: hash.to_owned(),
                    magic: format!("${magic}$"),
                    salt: (*salt).to_owned(),
                })
            }
            _ => Err(
                "unsupported password hash: use bcrypt, {SHA}, $apr1$ or $1$ (htpasswd -B, -s or -m)"
                    .to_owned(),
            ),
        }
    }

    /// Whether checking it costs milliseconds (bcrypt).
    pub fn is_slow(&self) -> bool {
        matches!(self, Secret::Bcrypt(_))
    }

    /// Whether `password` matches.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Secret::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Secret::Sha1(digest) => {
                let got: [u8; 20] = Sha1::digest(password).into();
                ct_eq(&got, digest)
            }
            Secret::Md5Crypt { full, magic, salt } => {
                let got = md5_crypt(password, salt.as_bytes(), magic.as_bytes());
                ct_eq(&got, full.as_bytes())
            }
        }
    }
}

/// Equality whose time depends on the lengths only.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// MD5-crypt (Poul-Henning Kamp's, with `magic` as the identifier):
/// `magic + salt + "$" + 22 characters`.
pub fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> Vec<u8> {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut d = Md5::new()
        .chain_update(password)
        .chain_update(magic)
        .chain_update(salt);
    for chunk in (0..password.len()).step_by(16) {
        d.update(&alternate[..(password.len() - chunk).min(16)]);
    }
    let mut i = password.len();
    while i != 0 {
        if i & 1 == 0 {
            d.update(&password[..1]);
        } else {
            d.update([0u8]);
        }
        i >>= 1;
    }
    let mut last = d.finalize();
    for round in 0..1000 {
        let mut r = Md5::new();
        if round & 1 == 1 {
            r.update(password);
        } else {
            r.update(last);
        }
        if round % 3 != 0 {
            r.update(salt);
        }
        if round % 7 != 0 {
            r.update(password);
        }
        if round & 1 == 1 {
            r.update(last);
        } else {
            r.update(password);
        }
        last = r.finalize();
    }
    let mut out = Vec::with_capacity(magic.len() + salt.len() + 23);
    out.extend_from_slice(magic);
    out.extend_from_slice(salt);
    out.push(b'$');
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(ITOA64[(v & 0x3f) as usize]);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put(
            u32::from(last[a]) << 16 | u32::from(last[b]) << 8 | u32::from(last[c]),
            4,
        );
    }
    put(u32::from(last[11]), 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl passwd` (and `openssl sha1 | base64`), password "secret" unless
    // said.
    const APR1: &str = "$apr1$Nf8Hbmnt$vzN4/HYwFkrBpFBNM27mO/";
    const MD5: &str = "$1$dlPL2MqE$oQmn16q49SqdmhenQuNgs1"; // "hello"
    const SHA: &str = "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=";

    #[test]
    fn every_format_checks_its_password() {
        for (hash, good) in [(APR1, "secret"), (MD5, "hello"), (SHA, "secret")] {
            let s = Secret::parse(hash).unwrap();
            assert!(s.verify(good.as_bytes()), "{hash}");
            assert!(!s.verify(b"wrong"), "{hash}");
            assert!(!s.is_slow());
        }
        let hash = bcrypt::hash_with_salt("secret", 4, [7; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let s = Secret::parse(&hash).unwrap();
        assert!(s.is_slow());
        assert!(s.verify(b"secret") && !s.verify(b"wrong"));
    }

    #[test]
    fn hashes_nothing_can_match_are_refused() {
        for bad in [
            "$apr1$x$y",
            "plain",
            "{SHA}abc",
            "$2y$10$short",
            "$apr1$salt$!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
    }
}

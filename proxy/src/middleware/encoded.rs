//! `encodedCharacters` at request time, as Traefik 3.7 decides: a request
//! whose path (as received, escaped) has a `%XX` escape of a refused byte,
//! or a `%` without two characters after it, is answered 400 with no body
//! before the backend. A path without `%` costs one scan; nothing is
//! allocated.

use http::{Request, Response, StatusCode};

use super::path::Step;
use crate::config::EncodedCharacters as Config;
use crate::forward::ProxyBody;
use crate::upstream::RequestBody;

/// A compiled `encodedCharacters`.
#[derive(Debug)]
pub struct EncodedCharacters {
    denied: Vec<u8>,
}

impl EncodedCharacters {
    pub(super) fn new(c: &Config) -> Self {
        Self::denying(c.denied.clone())
    }

    /// One refusing the bytes `denied` (an entrypoint's
    /// `http.encodedCharacters`).
    pub(super) fn denying(denied: Vec<u8>) -> Self {
        Self { denied }
    }

    pub(super) fn apply(&self, req: Request<RequestBody>) -> Step {
        if self.denied.is_empty() || !refused(req.uri().path().as_bytes(), &self.denied) {
            return Ok(req);
        }
        let mut resp = Response::new(ProxyBody::empty());
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        Err(Box::new(resp))
    }
}

/// Whether `path` escapes a `denied` byte or ends inside an escape.
fn refused(path: &[u8], denied: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        if path[i] != b'%' {
            i += 1;
            continue;
        }
        let (Some(&hi), Some(&lo)) = (path.get(i + 1), path.get(i + 2)) else {
            return true;
        };
        if let (Some(hi), Some(lo)) = (hex(hi), hex(lo))
            && denied.contains(&(hi << 4 | lo))
        {
            return true;
        }
        i += 3;
    }
    false
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_of_denied_bytes_are_found_in_either_case() {
        let all = [b'/', b'\\', 0, b';', b'%', b'?', b'#'];
        for bad in [
            "/a%2fb", "/a%2F", "/%5c", "/%00", "/%3B", "/%25", "/%3f", "/%23", "/x%", "/x%2",
        ] {
            assert!(refused(bad.as_bytes(), &all), "{bad}");
        }
        for good in ["/a/b", "/%41%20", "/%zz", "/caf%C3%A9"] {
            assert!(!refused(good.as_bytes(), &all), "{good}");
        }
        assert!(!refused(b"/a%2fb", b"%"), "only the denied ones");
    }
}

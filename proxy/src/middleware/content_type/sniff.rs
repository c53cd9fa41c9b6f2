//! The content type Go's `http.DetectContentType` gives the first bytes
//! of a body (the WHATWG MIME sniffing table as Go implements it: the
//! first 512 bytes, HTML tags after leading white space, masked and exact
//! signatures, MP4 boxes, then text or `application/octet-stream`).
//!
//! Pure and allocation-free; runs on the way out of a `contentType`
//! middleware, for responses without a `Content-Type`.

/// At most this many bytes decide.
pub(super) const SNIFF_LEN: usize = 512;

/// One row of the table.
enum Sig {
    /// An HTML tag, case-insensitive, after white space, then ` ` or `>`.
    Html(&'static [u8]),
    /// `data & mask == pat` (after white space when `skip_ws`).
    Masked {
        mask: &'static [u8],
        pat: &'static [u8],
        skip_ws: bool,
        ct: &'static str,
    },
    /// A prefix.
    Exact(&'static [u8], &'static str),
    /// An ISO BMFF `ftyp` box naming an `mp4` brand.
    Mp4,
    /// No binary byte after the white space.
    Text,
}

const HTML: &str = "text/html; charset=utf-8";

const fn masked(mask: &'static [u8], pat: &'static [u8], ct: &'static str) -> Sig {
    Sig::Masked {
        mask,
        pat,
        skip_ws: false,
        ct,
    }
}

const TABLE: &[Sig] = &[
    Sig::Html(b"<!DOCTYPE HTML"),
    Sig::Html(b"<HTML"),
    Sig::Html(b"<HEAD"),
    Sig::Html(b"<SCRIPT"),
    Sig::Html(b"<IFRAME"),
    Sig::Html(b"<H1"),
    Sig::Html(b"<DIV"),
    Sig::Html(b"<FONT"),
    Sig::Html(b"<TABLE"),
    Sig::Html(b"<A"),
    Sig::Html(b"<STYLE"),
    Sig::Html(b"<TITLE"),
    Sig::Html(b"<B"),
    Sig::Html(b"<BODY"),
    Sig::Html(b"<BR"),
    Sig::Html(b"<P"),
    Sig::Html(b"<!--"),
    Sig::Masked {
        mask: b"\xFF\xFF\xFF\xFF\xFF",
        pat: b"<?xml",
        skip_ws: true,
        ct: "text/xml; charset=utf-8",
    },
    Sig::Exact(b"%PDF-", "application/pdf"),
    Sig::Exact(b"%!PS-Adobe-", "application/postscript"),
    // UTF byte order marks.
    masked(
        b"\xFF\xFF\x00\x00",
        b"\xFE\xFF\x00\x00",
        "text/plain; charset=utf-16be",
    ),
    masked(
        b"\xFF\xFF\x00\x00",
        b"\xFF\xFE\x00\x00",
        "text/plain; charset=utf-16le",
    ),
    masked(
        b"\xFF\xFF\xFF\x00",
        b"\xEF\xBB\xBF\x00",
        "text/plain; charset=utf-8",
    ),
    // Images.
    Sig::Exact(b"\x00\x00\x01\x00", "image/x-icon"),
    Sig::Exact(b"\x00\x00\x02\x00", "image/x-icon"),
    Sig::Exact(b"BM", "image/bmp"),
    Sig::Exact(b"GIF87a", "image/gif"),
    Sig::Exact(b"GIF89a", "image/gif"),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    Sig::Exact(b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
    Sig::Exact(b"\xFF\xD8\xFF", "image/jpeg"),
    // Audio and video.
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"FORM\x00\x00\x00\x00AIFF",
        "audio/aiff",
    ),
    masked(b"\xFF\xFF\xFF", b"ID3", "audio/mpeg"),
    masked(b"\xFF\xFF\xFF\xFF\xFF", b"OggS\x00", "application/ogg"),
    masked(
        b"\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF",
        b"MThd\x00\x00\x00\x06",
        "audio/midi",
    ),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00AVI ",
        "video/avi",
    ),
    masked(
        b"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF",
        b"RIFF\x00\x00\x00\x00WAVE",
        "audio/wave",
    ),
    Sig::Mp4,
    Sig::Exact(b"\x1A\x45\xDF\xA3", "video/webm"),
    // Fonts.
    masked(
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xFF\xFF",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00LP",
        "application/vnd.ms-fontobject",
    ),
    Sig::Exact(b"\x00\x01\x00\x00", "font/ttf"),
    Sig::Exact(b"OTTO", "font/otf"),
    Sig::Exact(b"ttcf", "font/collection"),
    Sig::Exact(b"wOFF", "font/woff"),
    Sig::Exact(b"wOF2", "font/woff2"),
    // Archives.
    Sig::Exact(b"\x1F\x8B\x08", "application/x-gzip"),
    Sig::Exact(b"PK\x03\x04", "application/zip"),
    // RAR v1.5-v4.0 and v5.0.
    Sig::Exact(b"Rar!\x1A\x07\x00", "application/x-rar-compressed"),
    Sig::Exact(b"Rar!\x1A\x07\x01\x00", "application/x-rar-compressed"),
    Sig::Exact(b"\x00\x61\x73\x6D", "application/wasm"),
    Sig::Text,
];

fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// The content type of a body starting with `data`.
pub(super) fn detect(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    let first = data.iter().position(|&b| !is_ws(b)).unwrap_or(data.len());
    TABLE
        .iter()
        .find_map(|sig| matches(sig, data, first))
        .unwrap_or("application/octet-stream")
}

fn matches(sig: &Sig, data: &[u8], first: usize) -> Option<&'static str> {
    match sig {
        Sig::Html(tag) => {
            let d = &data[first..];
            if d.len() < tag.len() + 1 {
                return None;
            }
            let same = tag.iter().zip(d).all(|(&t, &b)| {
                let b = if t.is_ascii_uppercase() { b & 0xDF } else { b };
                t == b
            });
            (same && matches!(d[tag.len()], b' ' | b'>')).then_some(HTML)
        }
        Sig::Masked {
            mask,
            pat,
            skip_ws,
            ct,
        } => {
            let d = if *skip_ws { &data[first..] } else { data };
            if d.len() < mask.len() {
                return None;
            }
            mask.iter()
                .zip(pat.iter())
                .zip(d)
                .all(|((&m, &p), &b)| b & m == p)
                .then_some(*ct)
        }
        Sig::Exact(prefix, ct) => data.starts_with(prefix).then_some(*ct),
        Sig::Mp4 => mp4(data).then_some("video/mp4"),
        Sig::Text => data[first..]
            .iter()
            .all(|&b| !matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F))
            .then_some("text/plain; charset=utf-8"),
    }
}

fn mp4(data: &[u8]) -> bool {
    if data.len() < 12 {
        return false;
    }
    let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if !size.is_multiple_of(4) || data.len() < size || &data[4..8] != b"ftyp" {
        return false;
    }
    (8..size)
        .step_by(4)
        .filter(|&at| at != 12)
        .any(|at| data.get(at..at + 3) == Some(b"mp4"))
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn go_detect_content_type_table() {
        for (data, want) in [
            (&b""[..], "text/plain; charset=utf-8"),
            (b"Hello, world\n", "text/plain; charset=utf-8"),
            (b"  \n<!doctype html><p>x", "text/html; charset=utf-8"),
            (b"<HtMl><body>", "text/html; charset=utf-8"),
            (b"<html", "text/plain; charset=utf-8"),
            (b"<a href>", "text/html; charset=utf-8"),
            (b"\n <?xml version=\"1.0\"?>", "text/xml; charset=utf-8"),
            (b"{\"a\": 1}", "text/plain; charset=utf-8"),
            (b"%PDF-1.4", "application/pdf"),
            (b"GIF89a...", "image/gif"),
            (b"\x89PNG\x0D\x0A\x1A\x0A....", "image/png"),
            (b"\xFF\xD8\xFF\xE0", "image/jpeg"),
            (b"\x1F\x8B\x08\x00", "application/x-gzip"),
            (b"PK\x03\x04", "application/zip"),
            (b"\x00\x61\x73\x6D\x01", "application/wasm"),
            (b"\x00\x01\x02\x03", "application/octet-stream"),
            (b"wOF2xxxx", "font/woff2"),
            (
                b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom",
                "video/mp4",
            ),
            (b"\xEF\xBB\xBFtext", "text/plain; charset=utf-8"),
            (b"\xFE\xFF\x00\x41", "text/plain; charset=utf-16be"),
        ] {
            assert_eq!(detect(data), want, "{data:?}");
        }
    }
}

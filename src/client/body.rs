//! Reading a response body: its size cap, its content encoding, and the
//! character encoding it declares.

use super::error::TransportError;
use reqwest::header::{CONTENT_ENCODING, HeaderMap};

/// The default bound on one response body: far above any answer the
/// notification operations produce (a GetEvents batch is at most 50
/// events), far below what would strain the harness. A larger body is a
/// [`TransportError::Protocol`] and its remaining bytes are never read.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Why a body is not plain UTF-8 text: EWS speaks UTF-8 only, so a UTF-16
/// body, a byte order mark that contradicts it, or a stray invalid byte is
/// named here instead of surfacing later as "not well-formed XML".
/// A UTF-8 byte order mark alone is legal and not a problem.
pub fn encoding_problem(bytes: &[u8]) -> Option<String> {
    let utf16_bom = match bytes {
        [0xFF, 0xFE, ..] => Some("UTF-16LE"),
        [0xFE, 0xFF, ..] => Some("UTF-16BE"),
        _ => None,
    };
    let valid = std::str::from_utf8(bytes);
    if let Some(bom) = utf16_bom {
        let rest = if valid.is_err() && looks_like_utf16(&bytes[2..]) {
            "UTF-16 text follows"
        } else {
            "but the text after it is not UTF-16"
        };
        return Some(format!(
            "the body starts with a {bom} byte order mark ({rest}); EWS responses are UTF-8"
        ));
    }
    match valid {
        Ok(_) if looks_like_utf16(bytes) => Some(
            "the body looks like UTF-16 without a byte order mark (NUL bytes between the characters); EWS responses are UTF-8"
                .into(),
        ),
        Ok(text) => {
            if text.contains('\0') {
                Some(
                    "the body contains NUL characters (is it UTF-16 served as UTF-8?); EWS responses are UTF-8"
                        .into(),
                )
            } else {
                None
            }
        }
        Err(e) if looks_like_utf16(bytes) => Some(format!(
            "the body looks like UTF-16 without a byte order mark (invalid UTF-8 at byte {}); EWS responses are UTF-8",
            e.valid_up_to()
        )),
        Err(e) => Some(format!(
            "the body is not valid UTF-8: byte 0x{:02X} at offset {} cannot start or continue a character",
            bytes[e.valid_up_to()],
            e.valid_up_to()
        )),
    }
}

/// What a response says of its own encoding that is not UTF-8: a
/// `charset` in Content-Type, or an `encoding` in the XML declaration.
/// EWS answers are UTF-8, and the harness reads them as such, so another
/// declared encoding is named (with the byte-level problem, if any).
pub fn declared_encoding_problem(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_utf8 = |name: &str| {
        let n = name
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_ascii_lowercase();
        n == "utf-8" || n == "utf8"
    };
    let charset = content_type.and_then(|ct| {
        ct.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| v.trim().trim_matches('"').to_string())
        })
    });
    let declared = xml_declared_encoding(body);
    let mut said = Vec::new();
    if let Some(c) = charset.as_deref().filter(|c| !is_utf8(c)) {
        said.push(format!("Content-Type says charset={c}"));
    }
    if let Some(d) = declared.as_deref().filter(|d| !is_utf8(d)) {
        said.push(format!("the XML declaration says encoding=\"{d}\""));
    }
    if said.is_empty() {
        return None;
    }
    Some(format!(
        "{}; EWS responses are UTF-8, and the body was read as UTF-8",
        said.join(" and ")
    ))
}

/// The `encoding` pseudo-attribute of a leading `<?xml …?>` declaration.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let head = &body[..body.len().min(200)];
    let text = std::str::from_utf8(head).ok().or_else(|| {
        // Cut inside a character: the declaration itself is ASCII.
        let end = head
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(head.len());
        std::str::from_utf8(&head[..end]).ok()
    })?;
    let decl = text.strip_prefix("<?xml")?.split("?>").next()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest[1..].split(quote).next()?;
    Some(value.to_string())
}

/// Many zero bytes in alternate positions: ASCII text in UTF-16.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(512)];
    let zeros = sample.iter().filter(|b| **b == 0).count();
    sample.len() >= 4 && zeros * 3 >= sample.len()
}

/// The body without its content coding. The request accepts gzip only;
/// a body that says gzip and is not, or another coding, is unreadable.
pub(crate) fn decode(
    headers: &HeaderMap,
    body: Vec<u8>,
    cap: usize,
) -> Result<Vec<u8>, TransportError> {
    use std::io::Read;
    let Some(coding) = headers.get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    let coding = String::from_utf8_lossy(coding.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| TransportError::Protocol {
                    detail: format!(
                        "the response says `Content-Encoding: {coding}` but its {} bytes are not gzip data ({e}); they begin: {}",
                        body.len(),
                        crate::client::excerpt::excerpt(&String::from_utf8_lossy(&body), 200)
                    ),
                })?;
            if out.len() > cap {
                return Err(TransportError::Protocol {
                    detail: format!(
                        "the gzip response body decodes to more than the limit of {cap} bytes; decoding stopped there"
                    ),
                });
            }
            Ok(out)
        }
        other => Err(TransportError::Protocol {
            detail: format!(
                "the response is encoded with `Content-Encoding: {}`, which the request did not accept (it accepts gzip only)",
                crate::client::excerpt::excerpt(other, 60)
            ),
        }),
    }
}

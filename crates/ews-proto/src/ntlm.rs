//! NTLM (MS-NLMP) over HTTP, as on-premises Exchange offers it: the three
//! messages (NEGOTIATE, CHALLENGE, AUTHENTICATE) and the NTLMv2 response.
//! The reference server verifies with it and the harness answers with it;
//! exchangelib (through pyspnego) proves the server side independently.
//!
//! Only what HTTP authentication needs: no signing or sealing, so no
//! session key exchange; NTLMv1 and LM-only answers are refused.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
pub const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
pub const NEGOTIATE_NTLM: u32 = 0x0000_0200;
pub const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
pub const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
pub const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
pub const NEGOTIATE_VERSION: u32 = 0x0200_0000;
pub const NEGOTIATE_128: u32 = 0x2000_0000;
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;
pub const NEGOTIATE_56: u32 = 0x8000_0000;

/// What a NEGOTIATE from the harness asks for.
pub const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// A message that is not what the protocol says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    #[error("not an NTLM message: {0}")]
    Malformed(&'static str),
    #[error("an NTLM message of type {got} where type {want} was expected")]
    WrongType { want: u32, got: u32 },
    #[error("the AUTHENTICATE message carries no NTLMv2 response (NTLMv1 and LM are refused)")]
    NotV2,
}

// ------------------------------------------------------------ the hashes

/// NTOWFv2: HMAC-MD5 keyed with MD4(UTF-16LE(password)) over
/// UTF-16LE(UPPERCASE(user) + domain) (MS-NLMP 3.3.2).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16le(password));
    let mut who = utf16le(&user.to_uppercase());
    who.extend(utf16le(domain));
    hmac_md5(&nt_hash, &[&who])
}

/// NTProofStr: HMAC-MD5 keyed with NTOWFv2 over the server challenge and
/// the client's blob (the NTLMv2 response after its first 16 bytes).
pub fn nt_proof(ntowf: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(ntowf, &[server_challenge, blob])
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes a key of any length; the error arm cannot happen.
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(key) else {
        return [0; 16];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16le(b: &[u8]) -> Result<String, NtlmError> {
    if !b.len().is_multiple_of(2) {
        return Err(NtlmError::Malformed("a UTF-16 field of odd length"));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| NtlmError::Malformed("a field that is not UTF-16"))
}

/// Equal in time independent of where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ------------------------------------------------------------ reading

fn u16_at(b: &[u8], at: usize) -> Result<u16, NtlmError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(NtlmError::Malformed("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, NtlmError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(NtlmError::Malformed("truncated"))
}

/// A (length, max length, offset) field's bytes, bounds-checked.
fn field(b: &[u8], at: usize) -> Result<&[u8], NtlmError> {
    let len = u16_at(b, at)? as usize;
    let offset = u32_at(b, at + 4)? as usize;
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .and_then(|end| b.get(offset..end))
        .ok_or(NtlmError::Malformed("a field outside the message"))
}

fn message_type(b: &[u8]) -> Result<u32, NtlmError> {
    if b.get(..8) != Some(SIGNATURE.as_slice()) {
        return Err(NtlmError::Malformed("no NTLMSSP signature"));
    }
    u32_at(b, 8)
}

fn expect_type(b: &[u8], want: u32) -> Result<(), NtlmError> {
    let got = message_type(b)?;
    if got == want {
        Ok(())
    } else {
        Err(NtlmError::WrongType { want, got })
    }
}

/// The flags of a NEGOTIATE message.
pub fn read_negotiate(b: &[u8]) -> Result<u32, NtlmError> {
    expect_type(b, 1)?;
    u32_at(b, 12)
}

/// A CHALLENGE message's parts the client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: Vec<u8>,
}

pub fn read_challenge(b: &[u8]) -> Result<Challenge, NtlmError> {
    expect_type(b, 2)?;
    let flags = u32_at(b, 20)?;
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(b.get(24..32).ok_or(NtlmError::Malformed("truncated"))?);
    let target_info = field(b, 40)?.to_vec();
    Ok(Challenge {
        flags,
        server_challenge,
        target_info,
    })
}

/// An AUTHENTICATE message's parts the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub user: String,
    pub domain: String,
    pub nt_response: Vec<u8>,
}

pub fn read_authenticate(b: &[u8]) -> Result<Authenticate, NtlmError> {
    expect_type(b, 3)?;
    let nt_response = field(b, 20)?.to_vec();
    let flags = u32_at(b, 60)?;
    let text = |raw: &[u8]| {
        if flags & NEGOTIATE_UNICODE != 0 {
            from_utf16le(raw)
        } else {
            Ok(String::from_utf8_lossy(raw).into_owned())
        }
    };
    Ok(Authenticate {
        domain: text(field(b, 28)?)?,
        user: text(field(b, 36)?)?,
        nt_response,
    })
}

impl Authenticate {
    /// Whether the NTLMv2 response proves `password` for the challenge.
    pub fn verify(&self, server_challenge: &[u8; 8], password: &str) -> Result<bool, NtlmError> {
        // 16 bytes of proof, then a blob of at least its 28-byte header:
        // a 24-byte answer is NTLMv1.
        if self.nt_response.len() < 16 + 28 {
            return Err(NtlmError::NotV2);
        }
        let (proof, blob) = self.nt_response.split_at(16);
        let key = ntowf_v2(password, &self.user, &self.domain);
        Ok(same(proof, &nt_proof(&key, server_challenge, blob)))
    }
}

// ------------------------------------------------------------ writing

fn header(kind: u32) -> Vec<u8> {
    let mut m = SIGNATURE.to_vec();
    m.extend(kind.to_le_bytes());
    m
}

fn put_field(m: &mut [u8], at: usize, len: usize, offset: usize) {
    let len = len as u16;
    m[at..at + 2].copy_from_slice(&len.to_le_bytes());
    m[at + 2..at + 4].copy_from_slice(&len.to_le_bytes());
    m[at + 4..at + 8].copy_from_slice(&(offset as u32).to_le_bytes());
}

/// A NEGOTIATE message with [`CLIENT_FLAGS`] and no domain or workstation.
pub fn negotiate() -> Vec<u8> {
    let mut m = header(1);
    m.extend(CLIENT_FLAGS.to_le_bytes());
    m.extend([0u8; 16]); // domain and workstation fields, empty
    m
}

/// Windows FILETIME: 100 ns ticks since 1601-01-01.
pub fn filetime_now() -> u64 {
    const UNIX_EPOCH_AS_FILETIME: u64 = 116_444_736_000_000_000;
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH_AS_FILETIME + (since.as_nanos() / 100) as u64
}

/// AV pairs naming the server (MS-NLMP 2.2.2.1), with a timestamp.
pub fn target_info(domain: &str, computer: &str, timestamp: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pair = |id: u16, value: &[u8]| {
        out.extend(id.to_le_bytes());
        out.extend((value.len() as u16).to_le_bytes());
        out.extend(value);
    };
    pair(2, &utf16le(domain)); // MsvAvNbDomainName
    pair(1, &utf16le(computer)); // MsvAvNbComputerName
    pair(4, &utf16le(&domain.to_lowercase())); // MsvAvDnsDomainName
    pair(3, &utf16le(&computer.to_lowercase())); // MsvAvDnsComputerName
    pair(7, &timestamp.to_le_bytes()); // MsvAvTimestamp
    pair(0, &[]); // MsvAvEOL
    out
}

/// The server's CHALLENGE for a client's NEGOTIATE `client_flags`.
pub fn challenge(
    client_flags: u32,
    server_challenge: &[u8; 8],
    domain: &str,
    computer: &str,
) -> Vec<u8> {
    // What the server supports of what the client asked for, plus what
    // every answer carries.
    let echoed = client_flags
        & (NEGOTIATE_SIGN | NEGOTIATE_KEY_EXCH | NEGOTIATE_128 | NEGOTIATE_56 | NEGOTIATE_VERSION);
    let flags = echoed
        | NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO
        | NEGOTIATE_VERSION;
    let target_name = utf16le(domain);
    let info = target_info(domain, computer, filetime_now());
    let fixed = 56; // through the Version field
    let mut m = header(2);
    m.resize(fixed, 0);
    put_field(&mut m, 12, target_name.len(), fixed);
    m[20..24].copy_from_slice(&flags.to_le_bytes());
    m[24..32].copy_from_slice(server_challenge);
    put_field(&mut m, 40, info.len(), fixed + target_name.len());
    // Version: 10.0 build 17763, NTLM revision 15 (informational only).
    m[48..56].copy_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]);
    m.extend(target_name);
    m.extend(info);
    m
}

/// The client's AUTHENTICATE with an NTLMv2 response to `c`.
pub fn authenticate(
    c: &Challenge,
    user: &str,
    domain: &str,
    password: &str,
    client_challenge: &[u8; 8],
    timestamp: u64,
) -> Vec<u8> {
    // The server's timestamp, when it sent one (MS-NLMP 3.1.5.1.2).
    let timestamp = av_timestamp(&c.target_info).unwrap_or(timestamp);
    let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
    blob.extend(timestamp.to_le_bytes());
    blob.extend(client_challenge);
    blob.extend([0u8; 4]);
    blob.extend(&c.target_info);
    blob.extend([0u8; 4]);
    let key = ntowf_v2(password, user, domain);
    let mut nt = nt_proof(&key, &c.server_challenge, &blob).to_vec();
    nt.extend(&blob);
    let lm = [0u8; 24]; // with a server timestamp, LMv2 is all zero
    let (d, u) = (utf16le(domain), utf16le(user));
    let flags = CLIENT_FLAGS & c.flags | NEGOTIATE_UNICODE;
    let fixed = 64;
    let mut m = header(3);
    m.resize(fixed, 0);
    let mut at = fixed;
    let mut place = |m: &mut Vec<u8>, field_at: usize, bytes: &[u8]| {
        put_field(m, field_at, bytes.len(), at);
        at += bytes.len();
    };
    place(&mut m, 12, &lm);
    place(&mut m, 20, &nt);
    place(&mut m, 28, &d);
    place(&mut m, 36, &u);
    place(&mut m, 44, &[]); // workstation
    place(&mut m, 52, &[]); // no session key
    m[60..64].copy_from_slice(&flags.to_le_bytes());
    for part in [&lm[..], &nt, &d, &u] {
        m.extend(part);
    }
    m
}

fn av_timestamp(info: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at + 4 <= info.len() {
        let id = u16::from_le_bytes([info[at], info[at + 1]]);
        let len = u16::from_le_bytes([info[at + 2], info[at + 3]]) as usize;
        let value = info.get(at + 4..at + 4 + len)?;
        match id {
            0 => return None,
            7 if len == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(value);
                return Some(u64::from_le_bytes(b));
            }
            _ => at += 4 + len,
        }
    }
    None
}

/// `NTLM <base64>` from a header value, decoded.
pub fn from_header(value: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("NTLM") && !scheme.eq_ignore_ascii_case("Negotiate") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
}

/// `NTLM <base64>` for a message.
pub fn to_header(message: &[u8]) -> String {
    use base64::Engine;
    format!(
        "NTLM {}",
        base64::engine::general_purpose::STANDARD.encode(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// MS-NLMP 4.2.4: NTLMv2 with user "User", domain "Domain", password "Password".
    #[test]
    fn the_specifications_ntlmv2_values() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let server_challenge: [u8; 8] = hex("0123456789abcdef").try_into().expect("8");
        // 4.2.4.1.3: the AV pairs of the example CHALLENGE.
        let mut info = Vec::new();
        for (id, v) in [(2u16, utf16le("Domain")), (1, utf16le("Server"))] {
            info.extend(id.to_le_bytes());
            info.extend((v.len() as u16).to_le_bytes());
            info.extend(v);
        }
        info.extend([0u8; 4]);
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend([0u8; 8]); // time 0
        blob.extend([0xaa; 8]); // client challenge
        blob.extend([0u8; 4]);
        blob.extend(&info);
        blob.extend([0u8; 4]);
        // 4.2.4.2.2: NTProofStr.
        assert_eq!(
            nt_proof(&key, &server_challenge, &blob).to_vec(),
            hex("68cd0ab851e51c96aabc927bebef6a1c")
        );
    }

    #[test]
    fn the_three_messages_round_trip_and_only_the_password_verifies() {
        let n = negotiate();
        let flags = read_negotiate(&n).expect("negotiate");
        assert_eq!(flags, CLIENT_FLAGS);
        let server_challenge = [7u8; 8];
        let c = read_challenge(&challenge(flags, &server_challenge, "EXAMPLE", "EWS"))
            .expect("challenge");
        assert_eq!(c.server_challenge, server_challenge);
        assert!(av_timestamp(&c.target_info).is_some());
        let a = authenticate(&c, "alice", "EXAMPLE", "alice-Secret-1", &[3; 8], 0);
        let read = read_authenticate(&a).expect("authenticate");
        assert_eq!(
            (read.user.as_str(), read.domain.as_str()),
            ("alice", "EXAMPLE")
        );
        assert_eq!(read.verify(&server_challenge, "alice-Secret-1"), Ok(true));
        assert_eq!(read.verify(&server_challenge, "wrong"), Ok(false));
        assert_eq!(read.verify(&[8u8; 8], "alice-Secret-1"), Ok(false));
    }

    #[test]
    fn hostile_messages_are_errors_not_panics() {
        let good = authenticate(
            &read_challenge(&challenge(CLIENT_FLAGS, &[1; 8], "D", "S")).expect("c"),
            "u",
            "d",
            "p",
            &[2; 8],
            0,
        );
        for cut in 0..good.len() {
            let _ = read_authenticate(&good[..cut]);
        }
        let mut far = good.clone();
        far[24..28].copy_from_slice(&u32::MAX.to_le_bytes()); // NT offset out of range
        assert!(read_authenticate(&far).is_err());
        assert!(read_negotiate(b"NTLMSSP\0\x03\0\0\0").is_err());
        assert!(read_challenge(b"garbage").is_err());
        let v1 = Authenticate {
            user: "u".into(),
            domain: String::new(),
            nt_response: vec![0; 24],
        };
        assert_eq!(v1.verify(&[0; 8], "p"), Err(NtlmError::NotV2));
        assert_eq!(from_header("NTLM !!!"), None);
        assert_eq!(from_header(&to_header(b"x")), Some(b"x".to_vec()));
    }
}

//! The opaque strings the server hands out: item and folder ids, change
//! keys, watermarks and subscription ids. All are base64 like Exchange's,
//! and each carries the mailbox's per-run nonce so a value from another
//! mailbox or another server run is recognised as foreign, not misread.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::dialects::{Dialect, DialectSet};

/// Leading bytes of every store id (the shape of an Exchange entry id).
const ID_MAGIC: [u8; 3] = [0x00, 0x03, 0x24];
const WATERMARK_MAGIC: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    Folder,
    Item,
}

impl IdKind {
    fn tag(self) -> u8 {
        match self {
            IdKind::Folder => b'F',
            IdKind::Item => b'I',
        }
    }
}

/// A decoded store id: which mailbox (by nonce) and which object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId {
    pub kind: IdKind,
    pub mailbox: u64,
    pub number: u64,
}

impl StoreId {
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&ID_MAGIC);
        b.push(self.kind.tag());
        b.extend_from_slice(&self.mailbox.to_be_bytes());
        b.extend_from_slice(&self.number.to_be_bytes());
        STANDARD.encode(b)
    }

    /// `None` when the text is not an id this server could have made
    /// (ErrorInvalidIdMalformed); a decoded id may still name nothing.
    pub fn decode(text: &str, kind: IdKind) -> Option<StoreId> {
        let b = STANDARD.decode(text.trim()).ok()?;
        if b.len() != 20 || b[..3] != ID_MAGIC || b[3] != kind.tag() {
            return None;
        }
        Some(StoreId {
            kind,
            mailbox: u64::from_be_bytes(b[4..12].try_into().ok()?),
            number: u64::from_be_bytes(b[12..20].try_into().ok()?),
        })
    }
}

/// A change key: changes whenever the object's version does.
pub fn change_key(number: u64, version: u32) -> String {
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&[0x09, 0x00, 0x00, 0x00]);
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&number.to_be_bytes());
    STANDARD.encode(b)
}

/// A watermark: a cursor (the sequence number of the last event seen) into one mailbox's log.
pub fn encode_watermark(mailbox: u64, seq: u64) -> String {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&WATERMARK_MAGIC);
    b.extend_from_slice(&mailbox.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    STANDARD.encode(b)
}

/// Another string for the same position (a refreshed watermark): the
/// magic's last byte carries a generation 1..=255, which decoding ignores.
pub fn encode_refreshed_watermark(mailbox: u64, seq: u64) -> String {
    let mut b = Vec::with_capacity(20);
    b.extend_from_slice(&WATERMARK_MAGIC[..3]);
    b.push(rand::random_range(1..=255));
    b.extend_from_slice(&mailbox.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    STANDARD.encode(b)
}

/// `(mailbox nonce, sequence)` of a watermark, or `None` for garbage.
pub fn decode_watermark(text: &str) -> Option<(u64, u64)> {
    let b = STANDARD.decode(text.trim()).ok()?;
    if b.len() != 20 || b[..3] != WATERMARK_MAGIC[..3] {
        return None;
    }
    Some((
        u64::from_be_bytes(b[4..12].try_into().ok()?),
        u64::from_be_bytes(b[12..20].try_into().ok()?),
    ))
}

/// A fresh subscription id: 24 base64 characters of randomness, or the
/// form a dialect names.
pub fn new_subscription_id(dialects: &DialectSet) -> String {
    if dialects.has(Dialect::SubscriptionIdGuid) {
        let b: [u8; 16] = rand::random();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        return format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
    }
    if dialects.has(Dialect::SubscriptionIdPaddedBase64) {
        // 0xFB 0xFF 0xBF encode as "+/+/"; 50 bytes end in one "=".
        let mut b = vec![0xFB, 0xFF, 0xBF];
        b.extend((0..47).map(|_| rand::random::<u8>()));
        return STANDARD.encode(b);
    }
    let bytes: [u8; 18] = rand::random();
    STANDARD.encode(bytes)
}

/// A fresh per-run mailbox nonce.
pub fn new_nonce() -> u64 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_kinds() {
        let id = StoreId {
            kind: IdKind::Item,
            mailbox: 7,
            number: 42,
        };
        let text = id.encode();
        assert_eq!(StoreId::decode(&text, IdKind::Item), Some(id));
        assert_eq!(StoreId::decode(&text, IdKind::Folder), None);
        assert_eq!(StoreId::decode("not base64!", IdKind::Item), None);
        assert_eq!(StoreId::decode("AAAA", IdKind::Item), None);
    }

    #[test]
    fn watermarks_round_trip_and_differ_from_ids() {
        let w = encode_watermark(9, 3);
        assert_eq!(decode_watermark(&w), Some((9, 3)));
        assert_eq!(decode_watermark("garbage"), None);
        let id = StoreId {
            kind: IdKind::Folder,
            mailbox: 9,
            number: 3,
        };
        assert_eq!(decode_watermark(&id.encode()), None);
        assert_ne!(change_key(1, 1), change_key(1, 2));
        let none = DialectSet::none();
        assert_ne!(new_subscription_id(&none), new_subscription_id(&none));
        let r = encode_refreshed_watermark(9, 3);
        assert_ne!(r, w);
        assert_eq!(decode_watermark(&r), Some((9, 3)));
    }

    #[test]
    fn subscription_id_dialects_give_their_forms() {
        let guid = new_subscription_id(&DialectSet::of([Dialect::SubscriptionIdGuid]));
        let groups: Vec<usize> = guid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{guid}");
        assert!(guid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        let padded = new_subscription_id(&DialectSet::of([Dialect::SubscriptionIdPaddedBase64]));
        assert!(
            padded.starts_with("+/+/") && padded.ends_with('='),
            "{padded}"
        );
        assert!(STANDARD.decode(&padded).is_ok());
    }
}

//! The opaque strings the server hands out: item and folder ids, change
//! keys, watermarks and subscription ids. All are base64 like Exchange's,
//! and each carries the mailbox's per-run nonce so a value from another
//! mailbox or another server run is recognised as foreign, not misread.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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

/// `(mailbox nonce, sequence)` of a watermark, or `None` for garbage.
pub fn decode_watermark(text: &str) -> Option<(u64, u64)> {
    let b = STANDARD.decode(text.trim()).ok()?;
    if b.len() != 20 || b[..4] != WATERMARK_MAGIC {
        return None;
    }
    Some((
        u64::from_be_bytes(b[4..12].try_into().ok()?),
        u64::from_be_bytes(b[12..20].try_into().ok()?),
    ))
}

/// A fresh subscription id: 24 base64 characters of randomness.
pub fn new_subscription_id() -> String {
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
        assert_ne!(new_subscription_id(), new_subscription_id());
    }
}

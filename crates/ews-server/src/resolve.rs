//! Turning folder and item references of a request into store numbers in
//! the caller's mailbox, with the Exchange error for each way it can fail.

use roxmltree::Node;

use super::ids::{IdKind, StoreId};
use super::reply::Call;
use ews_proto::ews::ResponseCode;
use ews_proto::xml::{ElementExt, child, ns};

/// Why a reference names nothing the caller may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    Malformed,
    FolderNotFound,
    ItemNotFound,
    /// A folder or item in someone else's mailbox.
    OtherMailbox,
    /// A `t:Mailbox` address no mailbox here has.
    NoSuchMailbox,
}

impl Unresolved {
    /// The code for item and folder operations.
    pub fn code(&self) -> ResponseCode {
        match self {
            Unresolved::Malformed => ResponseCode::ErrorInvalidIdMalformed,
            Unresolved::FolderNotFound => ResponseCode::ErrorFolderNotFound,
            Unresolved::ItemNotFound => ResponseCode::ErrorItemNotFound,
            Unresolved::OtherMailbox => ResponseCode::ErrorAccessDenied,
            Unresolved::NoSuchMailbox => ResponseCode::ErrorNonExistentMailbox,
        }
    }

    pub fn text(&self) -> &'static str {
        match self {
            Unresolved::Malformed => "Id is malformed.",
            Unresolved::FolderNotFound => "The specified folder could not be found in the store.",
            Unresolved::ItemNotFound => "The specified object was not found in the store.",
            Unresolved::OtherMailbox => "Access is denied. Check credentials and try again.",
            Unresolved::NoSuchMailbox => "The SMTP address has no mailbox associated with it.",
        }
    }
}

/// Resolves `t:FolderId` or `t:DistinguishedFolderId` to a folder of the caller's mailbox.
pub fn folder(call: &Call<'_>, node: Node<'_, '_>) -> Result<u64, Unresolved> {
    let id = node.attribute("Id").unwrap_or_default();
    if node.is(ns::TYPES, "DistinguishedFolderId") {
        if let Some(addr) = child(node, ns::TYPES, "Mailbox")
            .and_then(|m| child(m, ns::TYPES, "EmailAddress"))
            .map(|a| a.text_trimmed())
        {
            match call.state.user_by_smtp(&addr) {
                None => return Err(Unresolved::NoSuchMailbox),
                Some(u) if u != call.user => return Err(Unresolved::OtherMailbox),
                Some(_) => {}
            }
        }
        let mailbox = call
            .state
            .mailbox(call.user)
            .ok_or(Unresolved::FolderNotFound)?;
        return mailbox
            .with(|d| d.distinguished(id))
            .ok_or(Unresolved::FolderNotFound);
    }
    if !node.is(ns::TYPES, "FolderId") {
        return Err(Unresolved::Malformed);
    }
    let decoded = StoreId::decode(id, IdKind::Folder).ok_or(Unresolved::Malformed)?;
    let mailbox = call
        .state
        .mailbox_by_nonce(decoded.mailbox)
        .ok_or(Unresolved::FolderNotFound)?;
    if mailbox.owner != call.user {
        return Err(Unresolved::OtherMailbox);
    }
    mailbox
        .with(|d| d.has_folder(decoded.number))
        .then_some(decoded.number)
        .ok_or(Unresolved::FolderNotFound)
}

/// Resolves a `t:ItemId` to an item of the caller's mailbox.
pub fn item(call: &Call<'_>, node: Node<'_, '_>) -> Result<u64, Unresolved> {
    let id = node.attribute("Id").unwrap_or_default();
    let decoded = StoreId::decode(id, IdKind::Item).ok_or(Unresolved::Malformed)?;
    let mailbox = call
        .state
        .mailbox_by_nonce(decoded.mailbox)
        .ok_or(Unresolved::ItemNotFound)?;
    if mailbox.owner != call.user {
        return Err(Unresolved::OtherMailbox);
    }
    mailbox
        .with(|d| d.has_item(decoded.number))
        .then_some(decoded.number)
        .ok_or(Unresolved::ItemNotFound)
}

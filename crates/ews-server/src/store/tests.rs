use super::*;
use crate::log::Filter;

fn kinds(mb: &Mailbox, after: u64) -> Vec<(EventKind, bool)> {
    mb.with(|d| {
        let all = Filter {
            all_folders: true,
            folders: Default::default(),
            kinds: EventKind::ALL.into_iter().collect(),
        };
        d.log
            .read_after(after, &all, usize::MAX)
            .0
            .into_iter()
            .map(|e| (e.kind, e.folder_key.is_some()))
            .collect()
    })
}

#[test]
fn delivery_then_move_then_soft_delete() {
    let mb = Mailbox::new(0);
    let inbox = mb.with(|d| d.distinguished("inbox")).expect("inbox");
    let drafts = mb.with(|d| d.distinguished("drafts")).expect("drafts");
    let item = mb
        .with(|d| d.create_item(inbox, NewMessage::default(), true))
        .expect("created");
    use EventKind::*;
    assert_eq!(
        kinds(&mb, 0),
        [(Created, false), (NewMail, false), (Modified, true)]
    );
    let head = mb.with(|d| d.log.head());
    let moved = mb.with(|d| d.move_item(item, drafts)).expect("moved");
    assert_ne!(moved, item, "a moved item gets a new id");
    assert_eq!(
        kinds(&mb, head),
        [(Moved, false), (Modified, true), (Modified, true)]
    );
    let head = mb.with(|d| d.log.head());
    mb.with(|d| d.delete_item(moved, DeleteType::Soft))
        .expect("soft");
    assert_eq!(kinds(&mb, head), [(Moved, false), (Modified, true)]);
    assert_eq!(
        mb.with(|d| d.item_view(moved)),
        Err(StoreError::ItemNotFound)
    );
}

#[test]
fn event_forms_change_copy_and_soft_delete_events_only() {
    use EventKind::*;
    for (forms, copy, soft) in [
        (EventForms::default(), Copied, Moved),
        (
            EventForms {
                copy_as_created: true,
                soft_delete_as_deleted: true,
            },
            Created,
            Deleted,
        ),
    ] {
        let mb = Mailbox::new(0);
        mb.with(|d| d.forms = forms);
        let inbox = mb.with(|d| d.distinguished("inbox")).expect("inbox");
        let drafts = mb.with(|d| d.distinguished("drafts")).expect("drafts");
        let item = mb
            .with(|d| d.create_item(inbox, NewMessage::default(), false))
            .expect("created");
        let head = mb.with(|d| d.log.head());
        let copied = mb.with(|d| d.copy_item(item, drafts)).expect("copied");
        assert_eq!(
            kinds(&mb, head),
            [(copy, false), (Modified, true)],
            "{forms:?}"
        );
        assert!(mb.with(|d| d.item_view(copied)).is_ok());
        let head = mb.with(|d| d.log.head());
        mb.with(|d| d.delete_item(item, DeleteType::Soft))
            .expect("soft");
        assert_eq!(
            kinds(&mb, head),
            [(soft, false), (Modified, true)],
            "{forms:?}"
        );
        assert_eq!(
            mb.with(|d| d.item_view(item)),
            Err(StoreError::ItemNotFound),
            "the item leaves its folder either way"
        );
    }
}

#[test]
fn folders_unique_and_distinguished_protected() {
    let mb = Mailbox::new(0);
    let inbox = mb.with(|d| d.distinguished("inbox")).expect("inbox");
    let f = mb
        .with(|d| d.create_folder(inbox, "Work", "IPF.Note"))
        .expect("created");
    assert_eq!(
        mb.with(|d| d.create_folder(inbox, "work", "IPF.Note")),
        Err(StoreError::FolderExists)
    );
    assert_eq!(
        mb.with(|d| d.delete_folder(inbox, DeleteType::Hard)),
        Err(StoreError::DeleteDistinguished)
    );
    let ck_before = mb
        .with(|d| d.folder_view(inbox))
        .expect("view")
        .id
        .change_key;
    mb.with(|d| d.delete_folder(f, DeleteType::Hard))
        .expect("deleted");
    let view = mb.with(|d| d.folder_view(inbox)).expect("view");
    assert_ne!(
        view.id.change_key, ck_before,
        "the parent's change key moves on"
    );
    assert_eq!(view.child_folders, 0);
}

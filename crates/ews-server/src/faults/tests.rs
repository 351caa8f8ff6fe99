use super::*;
use ews_proto::ews::envelope::{EnvelopeStyle, response};
use ews_proto::ews::{Id, ObjectId, ResponseCode, ResponseMessage, UnsubscribeResponse};

#[test]
fn the_table_is_in_enum_order_with_unique_kebab_names() {
    let mut seen = std::collections::HashSet::new();
    for (i, info) in CATALOGUE.iter().enumerate() {
        assert_eq!(info.fault as usize, i, "{} is out of order", info.name);
        assert!(seen.insert(info.name), "{} is listed twice", info.name);
        assert!(
            crate::testing::is_kebab_name(info.name),
            "{} is not kebab-case",
            info.name
        );
        assert!(!info.description.is_empty() && !info.description.contains('\n'));
        assert!(!info.rules.is_empty(), "{} breaks no rule", info.name);
        assert_eq!(Fault::from_name(info.name), Some(info.fault));
    }
    assert!(CATALOGUE.len() >= 25);
    assert!(CATALOGUE.len() <= 64, "FaultSet is a 64-bit set");
}

#[test]
fn names_parse_and_unknown_names_list_the_known_ones() {
    let set = FaultSet::parse(&["batch-51", "no-owner-check"]).expect("known names");
    assert!(set.has(Fault::Batch51) && set.has(Fault::NoOwnerCheck));
    assert!(!set.has(Fault::DropEvent));
    assert_eq!(set.iter().count(), 2);
    assert_eq!(format!("{set:?}"), r#"{"batch-51", "no-owner-check"}"#);
    let err = FaultSet::parse(&["batch-52"]).expect_err("unknown");
    assert!(err.to_string().contains("unknown fault `batch-52`"));
    assert!(err.to_string().contains("drop-event"));
    assert!(FaultSet::default().is_empty());
}

/// The server asks about each fault at exactly one place.
#[test]
fn each_fault_is_asked_about_at_exactly_one_place() {
    let counts = crate::testing::asks(r"\.has\(Fault::(\w+)\)");
    for fault in Fault::all() {
        let variant = format!("{fault:?}");
        assert_eq!(
            counts.get(&variant).copied().unwrap_or(0),
            1,
            "Fault::{variant} ({fault}) must be asked about at exactly one place"
        );
    }
}

fn event(kind: EventKind, n: u32) -> Event {
    Event {
        kind,
        watermark: Some(format!("W{n}")),
        timestamp: Some("2026-01-01T00:00:00Z".into()),
        object: Some(ObjectId::Item(Id::new(format!("I{n}")))),
        parent_folder_id: Some(Id::new("NEW")),
        old_object: None,
        old_parent_folder_id: None,
        unread_count: None,
    }
}

#[test]
fn a_clean_server_shapes_nothing() {
    let events = vec![event(EventKind::Created, 1), event(EventKind::NewMail, 2)];
    assert_eq!(shape_events(&FaultSet::none(), events.clone()), events);
    let xml = response(EnvelopeStyle::Prefixed, &Default::default(), |w| {
        UnsubscribeResponse {
            message: ResponseMessage::error(ResponseCode::ErrorSubscriptionNotFound, "no"),
        }
        .render(w)
    });
    assert_eq!(rewrite_response(&FaultSet::none(), xml.clone()), xml);
}

#[test]
fn delivery_faults_change_the_events() {
    let mut moved = event(EventKind::Moved, 3);
    moved.old_parent_folder_id = Some(Id::new("OLD"));
    let mut folder = event(EventKind::Modified, 4);
    folder.unread_count = Some(2);
    let events = vec![
        event(EventKind::Created, 1),
        event(EventKind::NewMail, 2),
        moved,
        folder,
    ];
    let kinds = |faults: &[Fault]| -> Vec<EventKind> {
        shape_events(&FaultSet::of(faults.iter().copied()), events.clone())
            .iter()
            .map(|e| e.kind)
            .collect()
    };
    use EventKind::*;
    assert_eq!(kinds(&[Fault::NewMailMissing]), [Created, Moved, Modified]);
    assert_eq!(
        kinds(&[Fault::RepeatEvent]),
        [Created, Created, NewMail, Moved, Modified]
    );
    assert_eq!(
        kinds(&[Fault::ReorderEvents]),
        [Modified, Moved, NewMail, Created]
    );
    let all = FaultSet::of([
        Fault::TimestampInvalid,
        Fault::UnreadCountWrong,
        Fault::MovedOldParentWrong,
    ]);
    let shaped = shape_events(&all, events.clone());
    assert_eq!(shaped[0].timestamp.as_deref(), Some("2026-01-01 00:00:00Z"));
    assert_eq!(shaped[3].unread_count, Some(3));
    assert_eq!(
        shaped[2]
            .old_parent_folder_id
            .as_ref()
            .map(|i| i.id.as_str()),
        Some("NEW")
    );
    assert_eq!(shaped[0].old_parent_folder_id, None);
}

#[test]
fn envelope_faults_rewrite_the_answer() {
    let xml = response(EnvelopeStyle::Prefixed, &Default::default(), |w| {
        UnsubscribeResponse {
            message: ResponseMessage::error(ResponseCode::ErrorSubscriptionNotFound, "no"),
        }
        .render(w)
    });
    let one = |fault| rewrite_response(&FaultSet::of([fault]), xml.clone());
    let swapped = one(Fault::ResponseCodeAfterLinkKey);
    let code = swapped.find("<m:ResponseCode>").expect("code kept");
    let key = swapped.find("<m:DescriptiveLinkKey>").expect("key kept");
    assert!(key < code, "{swapped}");
    assert!(!one(Fault::NoResponseClass).contains("ResponseClass"));
    assert!(one(Fault::SuccessWithErrorCode).contains(r#"ResponseClass="Success""#));
    let https = one(Fault::HttpsNamespaces);
    assert!(https.contains("https://schemas.microsoft.com/exchange/services/2006/messages"));
    assert!(!https.contains("http://schemas.microsoft.com/"));
    assert!(https.contains("http://schemas.xmlsoap.org/soap/envelope/"));
    for fault in [
        Fault::ResponseCodeAfterLinkKey,
        Fault::NoResponseClass,
        Fault::HttpsNamespaces,
    ] {
        assert!(roxmltree::Document::parse(&one(fault)).is_ok(), "{fault}");
    }
}

#[test]
fn stale_previous_watermark_sticks_after_the_second_call() {
    let m = FaultMemory::default();
    assert_eq!(m.stale_previous("s", "w0"), "w0");
    assert_eq!(m.stale_previous("s", "w1"), "w1");
    assert_eq!(m.stale_previous("s", "w2"), "w1");
    assert_eq!(m.stale_previous("s", "w3"), "w1");
    assert_eq!(m.stale_previous("t", "x0"), "x0");
}

//! The notification protocol's elements, request and response, as data.

use super::model::*;

use Ns::{M, Plain, Soap, T};

// ---- SOAP frame
pub(super) static ENVELOPE: Elem = seq(
    Soap,
    "Envelope",
    &[
        opt(&el(Soap, "Header", Content::Header)),
        one(&el(Soap, "Body", Content::Payload)),
        Particle {
            term: Term::OtherNs,
            min: 0,
            max: MANY,
            required_in_2007: false,
        },
    ],
);

pub(super) static REQUEST_SERVER_VERSION: Elem =
    el(T, "RequestServerVersion", Content::Empty).attrs(&[attr("Version", Value::Version, true)]);

pub(super) static SERVER_VERSION_INFO: Elem = el(T, "ServerVersionInfo", Content::Empty).attrs(&[
    attr("MajorVersion", INT, false),
    attr("MinorVersion", INT, false),
    attr("MajorBuildNumber", INT, false),
    attr("MinorBuildNumber", INT, false),
    attr("Version", Value::Text, false),
]);

pub(super) static FAULT: Elem = seq(
    Soap,
    "Fault",
    &[
        one(&leaf(Plain, "faultcode", Value::NonEmpty)),
        one(&leaf(Plain, "faultstring", Value::Text)),
        opt(&leaf(Plain, "faultactor", Value::Text)),
        opt(&el(Plain, "detail", Content::Any)),
    ],
);

// ---- ids and values shared by requests and responses
pub(super) const ID_ATTRS: &[Attr] = &[
    attr("Id", Value::Text, true),
    attr("ChangeKey", Value::Text, false),
];

pub(super) const fn id(name: &'static str) -> Elem {
    el(T, name, Content::Empty).attrs(ID_ATTRS)
}

pub(super) static ITEM_ID: Elem = id("ItemId");
pub(super) static FOLDER_ID: Elem = id("FolderId");
pub(super) static PARENT_FOLDER_ID: Elem = id("ParentFolderId");
pub(super) static OLD_ITEM_ID: Elem = id("OldItemId");
pub(super) static OLD_FOLDER_ID: Elem = id("OldFolderId");
pub(super) static OLD_PARENT_FOLDER_ID: Elem = id("OldParentFolderId");

pub(super) static T_SUBSCRIPTION_ID: Elem = leaf(T, "SubscriptionId", Value::NonEmpty);
pub(super) static T_WATERMARK: Elem = leaf(T, "Watermark", Value::NonEmpty);
pub(super) static M_SUBSCRIPTION_ID: Elem = leaf(M, "SubscriptionId", Value::NonEmpty);
pub(super) static M_WATERMARK: Elem = leaf(M, "Watermark", Value::NonEmpty);

// ---- Subscribe request (digest 1.1)
pub(super) static MAILBOX: Elem = seq(
    T,
    "Mailbox",
    &[
        opt(&leaf(T, "Name", Value::Text)),
        opt(&leaf(T, "EmailAddress", Value::NonEmpty)),
        opt(&leaf(T, "RoutingType", Value::NonEmpty)),
        opt(&leaf(
            T,
            "MailboxType",
            Value::Enum(&[
                "Unknown",
                "OneOff",
                "Mailbox",
                "PublicDL",
                "PrivateDL",
                "Contact",
                "PublicFolder",
                "GroupMailbox",
                "ImplicitContact",
            ]),
        )),
        opt(&ITEM_ID),
        opt(&leaf(T, "OriginalDisplayName", Value::Text)),
    ],
);

pub(super) static DISTINGUISHED_FOLDER_ID: Elem = seq(T, "DistinguishedFolderId", &[opt(&MAILBOX)])
    .attrs(&[
        attr("Id", Value::FolderName, true),
        attr("ChangeKey", Value::Text, false),
    ]);

pub(super) static FOLDER_IDS: Elem = seq(
    T,
    "FolderIds",
    &[choice(&[&FOLDER_ID, &DISTINGUISHED_FOLDER_ID], 1, MANY)],
);

pub(super) static EVENT_TYPES: Elem = seq(
    T,
    "EventTypes",
    &[many(&leaf(T, "EventType", Value::EventType), 1)],
);

pub(super) const SUBSCRIBE_TO_ALL_FOLDERS: &[Attr] = &[Attr {
    name: "SubscribeToAllFolders",
    value: Value::Bool,
    required: false,
    since: Level::Ex2010,
}];

pub(super) static PULL_REQUEST: Elem = seq(
    M,
    "PullSubscriptionRequest",
    &[
        opt_since_2010(&FOLDER_IDS),
        one(&EVENT_TYPES),
        opt(&T_WATERMARK),
        one(&leaf(T, "Timeout", Value::Int(1, 1440))),
    ],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS);

pub(super) static PUSH_REQUEST: Elem = seq(
    M,
    "PushSubscriptionRequest",
    &[
        opt_since_2010(&FOLDER_IDS),
        one(&EVENT_TYPES),
        opt(&T_WATERMARK),
        one(&leaf(T, "StatusFrequency", Value::Int(1, 1440))),
        one(&leaf(T, "URL", Value::Text)),
        opt(&leaf(T, "CallerData", Value::Text).since(Level::Ex2013)),
    ],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS);

pub(super) static STREAMING_REQUEST: Elem = seq(
    M,
    "StreamingSubscriptionRequest",
    &[opt(&FOLDER_IDS), one(&EVENT_TYPES)],
)
.attrs(SUBSCRIBE_TO_ALL_FOLDERS)
.since(Level::Ex2010Sp1);

pub(super) static SUBSCRIBE: Elem = seq(
    M,
    "Subscribe",
    &[choice(
        &[&PULL_REQUEST, &PUSH_REQUEST, &STREAMING_REQUEST],
        1,
        1,
    )],
);

// ---- the other requests (digest 1.2-1.5)
pub(super) static GET_EVENTS: Elem = seq(
    M,
    "GetEvents",
    &[one(&M_SUBSCRIPTION_ID), one(&M_WATERMARK)],
);

pub(super) static GET_STREAMING_EVENTS: Elem = seq(
    M,
    "GetStreamingEvents",
    &[
        one(&seq(M, "SubscriptionIds", &[many(&T_SUBSCRIPTION_ID, 1)])),
        one(&leaf(M, "ConnectionTimeout", Value::Int(1, 30))),
    ],
)
.since(Level::Ex2010Sp1);

pub(super) static UNSUBSCRIBE: Elem = seq(M, "Unsubscribe", &[one(&M_SUBSCRIPTION_ID)]);

pub(super) static SEND_NOTIFICATION_RESULT: Elem = seq(
    M,
    "SendNotificationResult",
    &[one(&leaf(
        M,
        "SubscriptionStatus",
        Value::Enum(&["OK", "Unsubscribe"]),
    ))],
);

// ---- events and notifications (digest 2.1)
/// BaseObjectChangedEventType and its extensions, in schema order.
macro_rules! object_event {
    ($name:literal $(, $extra:expr)*) => {
        seq(
            T,
            $name,
            &[
                opt_since_2010(&T_WATERMARK),
                one(&leaf(T, "TimeStamp", Value::DateTime)),
                choice(&[&FOLDER_ID, &ITEM_ID], 1, 1),
                one(&PARENT_FOLDER_ID),
                $($extra,)*
            ],
        )
    };
}

macro_rules! moved_copied_event {
    ($name:literal) => {
        object_event!(
            $name,
            choice(&[&OLD_FOLDER_ID, &OLD_ITEM_ID], 1, 1),
            one(&OLD_PARENT_FOLDER_ID)
        )
    };
}

pub(super) static EVENTS: [&Elem; 8] = [
    &moved_copied_event!("CopiedEvent"),
    &object_event!("CreatedEvent"),
    &object_event!("DeletedEvent"),
    &object_event!("ModifiedEvent", opt(&leaf(T, "UnreadCount", INT))),
    &moved_copied_event!("MovedEvent"),
    &object_event!("NewMailEvent"),
    &seq(T, "StatusEvent", &[opt_since_2010(&T_WATERMARK)]),
    &object_event!("FreeBusyChangedEvent").since(Level::Ex2010Sp1),
];

pub(super) const NOTIFICATION_CONTENT: Content = Content::Seq(&[
    one(&T_SUBSCRIPTION_ID),
    opt_since_2010(&leaf(T, "PreviousWatermark", Value::NonEmpty)),
    opt_since_2010(&leaf(T, "MoreEvents", Value::Bool)),
    choice(&EVENTS, 1, MANY),
]);

pub(super) static M_NOTIFICATION: Elem = el(M, "Notification", NOTIFICATION_CONTENT);

/// Inside m:Notifications the schema says t:Notification, Exchange sends m:.
pub(super) static STREAM_NOTIFICATION: Elem = Elem {
    name: "Notification",
    ns: NsRule::Either { schema: T, wire: M },
    attrs: &[],
    content: NOTIFICATION_CONTENT,
    since: Level::Ex2010Sp1,
};

/// Inside m:ErrorSubscriptionIds the schema says t:, the Managed API reads m:.
pub(super) static ERROR_SUBSCRIPTION_ID: Elem = Elem {
    name: "SubscriptionId",
    ns: NsRule::Either { schema: T, wire: M },
    attrs: &[],
    content: Content::Simple(Value::NonEmpty),
    since: Level::Ex2010Sp1,
};

// ---- responses (digest 0.2, 1.1-1.5)
pub(super) const RESPONSE_CLASS: &[Attr] = &[attr(
    "ResponseClass",
    Value::Enum(&["Success", "Warning", "Error"]),
    true,
)];

/// ResponseMessageType: the common items in their fixed order, then the
/// operation's own elements.
macro_rules! response_message {
    ($name:literal $(, $extra:expr)*) => {
        seq(
            M,
            $name,
            &[
                opt(&leaf(M, "MessageText", Value::Text)),
                opt(&leaf(M, "ResponseCode", Value::ResponseCode)),
                opt(&leaf(M, "DescriptiveLinkKey", INT)),
                opt(&el(M, "MessageXml", Content::Any)),
                $($extra,)*
            ],
        )
        .attrs(RESPONSE_CLASS)
    };
}

/// `m:<Response>/m:ResponseMessages/m:<Message>+`.
macro_rules! response_op {
    ($name:literal, $message:expr) => {
        seq(
            M,
            $name,
            &[one(&seq(M, "ResponseMessages", &[many($message, 1)]))],
        )
    };
}

pub(super) static SUBSCRIBE_RESPONSE: Elem = response_op!(
    "SubscribeResponse",
    &response_message!(
        "SubscribeResponseMessage",
        opt(&M_SUBSCRIPTION_ID),
        opt(&M_WATERMARK)
    )
);

pub(super) static GET_EVENTS_RESPONSE: Elem = response_op!(
    "GetEventsResponse",
    &response_message!("GetEventsResponseMessage", opt(&M_NOTIFICATION))
);

pub(super) static GET_STREAMING_EVENTS_RESPONSE: Elem = response_op!(
    "GetStreamingEventsResponse",
    &response_message!(
        "GetStreamingEventsResponseMessage",
        opt(&seq(M, "Notifications", &[many(&STREAM_NOTIFICATION, 0)])),
        opt(&seq(
            M,
            "ErrorSubscriptionIds",
            &[many(&ERROR_SUBSCRIPTION_ID, 1)]
        )),
        opt(&leaf(M, "ConnectionStatus", Value::Enum(&["OK", "Closed"])))
    )
)
.since(Level::Ex2010Sp1);

pub(super) static UNSUBSCRIBE_RESPONSE: Elem = response_op!(
    "UnsubscribeResponse",
    &response_message!("UnsubscribeResponseMessage")
);

pub(super) static SEND_NOTIFICATION: Elem = response_op!(
    "SendNotification",
    &response_message!("SendNotificationResponseMessage", one(&M_NOTIFICATION))
);

pub(super) static REQUESTS: [&Elem; 5] = [
    &SUBSCRIBE,
    &GET_EVENTS,
    &GET_STREAMING_EVENTS,
    &UNSUBSCRIBE,
    &SEND_NOTIFICATION_RESULT,
];

pub(super) static RESPONSES: [&Elem; 5] = [
    &SUBSCRIBE_RESPONSE,
    &GET_EVENTS_RESPONSE,
    &GET_STREAMING_EVENTS_RESPONSE,
    &UNSUBSCRIBE_RESPONSE,
    &SEND_NOTIFICATION,
];

pub(super) const SUBSCRIBABLE_EVENTS: &[&str] = &[
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
];

/// The values of `t:DistinguishedFolderIdNameType`.
pub const DISTINGUISHED_FOLDERS: &[&str] = &[
    "calendar",
    "contacts",
    "deleteditems",
    "drafts",
    "inbox",
    "journal",
    "notes",
    "outbox",
    "sentitems",
    "tasks",
    "msgfolderroot",
    "publicfoldersroot",
    "root",
    "junkemail",
    "searchfolders",
    "voicemail",
    "recoverableitemsroot",
    "recoverableitemsdeletions",
    "recoverableitemsversions",
    "recoverableitemspurges",
    "recoverableitemsdiscoveryholds",
    "archiveroot",
    "archivemsgfolderroot",
    "archivedeleteditems",
    "archiveinbox",
    "archiverecoverableitemsroot",
    "archiverecoverableitemsdeletions",
    "archiverecoverableitemsversions",
    "archiverecoverableitemspurges",
    "archiverecoverableitemsdiscoveryholds",
    "syncissues",
    "conflicts",
    "localfailures",
    "serverfailures",
    "recipientcache",
    "quickcontacts",
    "conversationhistory",
    "adminauditlogs",
    "todosearch",
    "mycontacts",
    "directory",
    "imcontactlist",
    "peopleconnect",
    "favorites",
    "mecontact",
    "personmetadata",
    "teamspaceactivity",
    "teamspacemessaging",
    "teamspaceworkitems",
    "scheduled",
    "orionnotes",
    "tagitems",
    "alltaggeditems",
    "externalcontacts",
    "teamchat",
    "yammerroot",
    "yammerinbound",
    "yammeroutbound",
    "yammerfeeds",
    "onedriveroot",
    "onedriverecylebin",
    "onedrivesystem",
    "onedrivevolume",
];

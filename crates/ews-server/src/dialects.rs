//! The dialect catalogue: named, documented and *legal* variations of what
//! real Exchange versions put on the wire. It mirrors the fault catalogue
//! ([`super::faults`]): faults prove the suite can fail, dialects prove it
//! fails only for the right reasons. A case that fails against a dialect
//! is a bug in the case or its check, never in the dialect.
//!
//! Every dialect has a stable kebab-case name, a one-line description and
//! the public source that shows Exchange (or its documentation) doing it.
//! [`DIALECTS`] is the single table; `serve --dialect NAME`, the config key
//! `dialects = [..]` and [`ServerConfig::dialects`] switch them on. The
//! server asks `dialects.has(Dialect::X)` at exactly one place per dialect
//! (a unit test below counts them). Wire-form dialects all live in one
//! rewriting layer ([`super::rewrite`]) that every outgoing XML document
//! passes through; the faithful default (no dialect) is never rewritten.
//!
//! Some dialects exclude each other (two values of one thing); some only
//! make sense with a server profile (`EWS_PROFILE`), which the self-test
//! then runs them with.
//!
//! [`ServerConfig::dialects`]: super::ServerConfig::dialects

/// One legal variation of Exchange's wire behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Dialect {
    // SOAP faults
    FaultLang,
    FaultActor,
    FaultMessageXml,
    SchemaErrorMessage,
    // Envelope form (the rewriting layer)
    NoXmlDeclaration,
    SoapPrefix,
    OtherPrefixes,
    ServerVersionHPrefix,
    ExtraNamespaces,
    DefaultNamespace,
    SuccessMessageText,
    // ServerVersionInfo values
    ServerVersion2010Sp1,
    ServerVersion2013Rtm,
    ServerVersionOnline,
    // Subscription ids
    SubscriptionIdPaddedBase64,
    SubscriptionIdGuid,
    // Streaming
    StreamingMNotification,
    ErrorSubscriptionIdM,
    StreamChunksSplit,
    StreamChunksJoined,
    ReconnectReportsMissed,
    StreamingEventWatermarks,
    // Event semantics
    StatusWatermarkRefreshed,
    CopyAsCreated,
    UnsubscribedCode,
    LateDelivery,
    // HTTP
    CloseAfterResponse,
    Gzip,
    ExtraHeaders,
    // Profile-bound
    SoftDeleteAsDeleted,
}

/// What the catalogue says about one dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialectInfo {
    pub dialect: Dialect,
    /// The stable kebab-case name (`serve --dialect NAME`).
    pub name: &'static str,
    /// Which kind of variation (fault, envelope, version, ids, streaming, events, http).
    pub class: &'static str,
    pub description: &'static str,
    /// Where Exchange (or its documentation) shows this form.
    pub source: &'static str,
    /// Dialects that cannot be on together with this one.
    pub excludes: &'static [Dialect],
    /// The server profile (`EWS_PROFILE`) the suite must run with.
    pub profile: Option<&'static str>,
    /// The RequestServerVersion (`EWS_VERSION`) the suite must send.
    pub version: Option<&'static str>,
}

const fn d(
    dialect: Dialect,
    name: &'static str,
    class: &'static str,
    description: &'static str,
    source: &'static str,
    excludes: &'static [Dialect],
) -> DialectInfo {
    DialectInfo {
        dialect,
        name,
        class,
        description,
        source,
        excludes,
        profile: None,
        version: None,
    }
}

use Dialect::*;

use ews_proto::ews::ServerVersionInfo;

/// Every dialect, in [`Dialect`] order.
pub const DIALECTS: &[DialectInfo] = &[
    d(
        FaultLang,
        "fault-lang",
        "fault",
        "SOAP faults carry <faultstring xml:lang=\"en-US\">",
        "EWS reference, GetServiceConfiguration and GetFolder operation pages: ErrorSchemaValidation fault examples (MicrosoftDocs/office-developer-exchange-docs docs/web-service-reference/getserviceconfiguration-operation.md)",
        &[],
    ),
    d(
        FaultActor,
        "fault-actor",
        "fault",
        "SOAP faults carry a faultactor naming the EWS URL after faultstring",
        "EWS reference, ErrorCode (SOAP fault) element page: example fault with <faultactor>https://CAS01.example.com/EWS/Exchange.asmx</faultactor>; SOAP 1.1 section 4.4",
        &[],
    ),
    d(
        FaultMessageXml,
        "fault-message-xml",
        "fault",
        "ErrorSchemaValidation fault details add t:MessageXml with t:LineNumber, t:LinePosition and t:Violation after e:Message",
        "EWS reference, GetServiceConfiguration / GetFolder operation pages: schema-validation fault detail with t:MessageXml (LineNumber, LinePosition, Violation)",
        &[],
    ),
    d(
        SchemaErrorMessage,
        "schema-error-message",
        "fault",
        "a request its schema rejects gets HTTP 200 and an ErrorSchemaValidation response message (ResponseClass Error), not a SOAP fault",
        "notifications digest S-list: Exchange may answer schema errors with a response message instead of a fault (UNSURE which); EWS responsecode.md lists ErrorSchemaValidation as a response code",
        &[],
    ),
    d(
        NoXmlDeclaration,
        "no-xml-declaration",
        "envelope",
        "responses and push bodies start at the root element, without <?xml ...?>",
        "XML 1.0 section 2.8 (the declaration is optional); Exchange 2013 streaming envelopes have none (EWS 'How to stream notifications' example, C-STREAM)",
        &[],
    ),
    d(
        SoapPrefix,
        "soap-prefix",
        "envelope",
        "the SOAP envelope uses the prefix soap: instead of s: (streaming envelopes stay unprefixed, as Exchange writes them)",
        "EWS reference, ErrorCode (SOAP fault) page: a response written with soap:Envelope/soap:Body/soap:Fault",
        &[DefaultNamespace],
    ),
    d(
        OtherPrefixes,
        "other-prefixes",
        "envelope",
        "messages and types elements use the prefixes msg: and typ: instead of m: and t:",
        "Namespaces in XML 1.0 section 3 (a prefix is only a local name for its namespace URI); the EWS schemas fix namespaces, never prefixes",
        &[DefaultNamespace],
    ),
    d(
        ServerVersionHPrefix,
        "server-version-h-prefix",
        "envelope",
        "the header is <h:ServerVersionInfo xmlns:h=types xmlns=types xmlns:xsd xmlns:xsi .../>",
        "EWS reference, ApplyConversationAction / UpdateInboxRules operation pages: Exchange 2010 SP1 responses with h:ServerVersionInfo",
        &[DefaultNamespace],
    ),
    d(
        ExtraNamespaces,
        "extra-namespaces",
        "envelope",
        "the root element also declares the messages, types, xsi and xsd namespaces, most unused there",
        "EWS reference operation pages: Exchange responses declare xmlns:xsi and xmlns:xsd on elements that use neither",
        &[],
    ),
    d(
        DefaultNamespace,
        "default-namespace",
        "envelope",
        "no prefixes at all: every element declares its namespace as the default (xmlns=\"...\") where it changes",
        "Namespaces in XML 1.0 section 6.2; EWS 'How to pull notifications' example responses written with default namespaces (C-PULL)",
        &[SoapPrefix, OtherPrefixes, ServerVersionHPrefix],
    ),
    d(
        SuccessMessageText,
        "success-message-text",
        "envelope",
        "success response messages carry an m:MessageText before m:ResponseCode",
        "messages.xsd ResponseMessageType: MessageText is minOccurs=0 whatever the ResponseClass; EWS responsemessage pages",
        &[],
    ),
    d(
        ServerVersion2010Sp1,
        "server-version-2010-sp1",
        "version",
        "ServerVersionInfo 14.1.218.15, Version=\"Exchange2010_SP1\"",
        "EWS reference operation pages: Exchange 2010 SP1 responses with MajorVersion 14, MinorVersion 1, Version Exchange2010_SP1",
        &[ServerVersion2013Rtm, ServerVersionOnline],
    ),
    d(
        ServerVersion2013Rtm,
        "server-version-2013-rtm",
        "version",
        "ServerVersionInfo 15.0.516.29, Version=\"Exchange2013\" (the enumeration value, not V2_n)",
        "EWS reference operation pages: Exchange 2013 responses with MajorVersion 15, MinorVersion 0, Version Exchange2013",
        &[ServerVersion2010Sp1, ServerVersionOnline],
    ),
    d(
        ServerVersionOnline,
        "server-version-online",
        "version",
        "ServerVersionInfo 15.20.2835.22, Version=\"V2018_01_08\" (outside the schema's ExchangeVersionType enumeration)",
        "Exchange Online responses as captured by client projects (ServerVersionInfo 15.20.2835.22 V2018_01_08 in a TypeScript EWS model); types.xsd types Version as a plain string",
        &[ServerVersion2010Sp1, ServerVersion2013Rtm],
    ),
    d(
        SubscriptionIdPaddedBase64,
        "subscription-id-padded-base64",
        "ids",
        "subscription ids are long base64 strings that always contain + and / and end in = padding",
        "EWS 'How to pull/stream notifications' examples: subscription ids are base64 of a server name and GUID; types.xsd SubscriptionIdType is a plain string",
        &[SubscriptionIdGuid],
    ),
    d(
        SubscriptionIdGuid,
        "subscription-id-guid",
        "ids",
        "subscription ids are bare GUIDs (8-4-4-4-12 hex)",
        "types.xsd: SubscriptionIdType is xs:string with no pattern; the EWS docs call the id opaque (subscriptionid-getevents.md)",
        &[SubscriptionIdPaddedBase64],
    ),
    d(
        StreamingMNotification,
        "streaming-m-notification",
        "streaming",
        "streaming envelopes write m:Notification inside m:Notifications, not the schema's t:Notification",
        "EWS 'How to stream notifications' example and EWS Managed API GetStreamingEventsResults.cs read m:Notification (digest 0.3 CONFLICT)",
        &[],
    ),
    d(
        ErrorSubscriptionIdM,
        "error-subscription-id-m",
        "streaming",
        "ErrorSubscriptionIds list m:SubscriptionId, not the schema's t:SubscriptionId",
        "EWS Managed API GetStreamingEventsResponse.cs reads ErrorSubscriptionIds/SubscriptionId in the messages namespace (digest 0.3 CONFLICT/UNSURE)",
        &[],
    ),
    d(
        StreamChunksSplit,
        "stream-chunks-split",
        "streaming",
        "every streaming envelope is sent as several HTTP chunks cut at arbitrary byte offsets",
        "RFC 9112 section 7.1 (chunk boundaries carry no meaning); EWS Managed API HangingServiceRequestBase.cs reassembles envelopes from a byte stream",
        &[StreamChunksJoined],
    ),
    d(
        StreamChunksJoined,
        "stream-chunks-joined",
        "streaming",
        "streaming envelopes that are ready together go out in one HTTP chunk",
        "RFC 9112 section 7.1; EWS Managed API HangingServiceRequestBase.cs / ews-javascript-api split a chunk on <Envelope boundaries",
        &[StreamChunksSplit],
    ),
    d(
        ReconnectReportsMissed,
        "reconnect-reports-missed",
        "streaming",
        "a streaming subscription reconnecting after events were raised while no connection was open drops them and reports ErrorMissedNotificationEvents for it in the new connection's second envelope",
        "EWS reference responsecode.md: ErrorMissedNotificationEvents (events were missed); ews-managed-api StreamingSubscriptionConnection keeps a subscription with that code on the connection (digest GS6: keep the events or say so)",
        &[],
    ),
    d(
        StreamingEventWatermarks,
        "streaming-event-watermarks",
        "streaming",
        "events in streaming notifications carry t:Watermark",
        "types.xsd BaseNotificationEventType: Watermark minOccurs=0; EWS 'How to stream notifications' example events carry watermarks",
        &[],
    ),
    d(
        StatusWatermarkRefreshed,
        "status-watermark-refreshed",
        "events",
        "an idle pull StatusEvent carries a refreshed watermark (a new string naming the same resume point), not the one sent",
        "EWS reference statusevent.md: the server may refresh an idle subscription's watermark (digest G3)",
        &[],
    ),
    d(
        CopyAsCreated,
        "copy-as-created",
        "events",
        "CopyItem raises a CreatedEvent of the copy instead of a CopiedEvent",
        "EWS 'Notification subscriptions, mailbox events' overview figure vs copiedevent.md (digest R77: accept either)",
        &[],
    ),
    d(
        UnsubscribedCode,
        "unsubscribed-code",
        "events",
        "a request naming a subscription after its Unsubscribe gets ErrorSubscriptionUnsubscribed, not ErrorSubscriptionNotFound",
        "EWS reference responsecode.md: ErrorSubscriptionUnsubscribed is for a subscription that has been unsubscribed (digest U5: accept both)",
        &[],
    ),
    d(
        LateDelivery,
        "late-delivery",
        "events",
        "sent mail reaches the recipient's Inbox (and raises its events) 1-5 s of protocol time after CreateItem returns",
        "Exchange transport pipeline: SendOnly/SendAndSaveCopy queue the message for delivery (EWS createitem-operation.md: MessageDisposition); delivery is asynchronous",
        &[],
    ),
    d(
        CloseAfterResponse,
        "close-after-response",
        "http",
        "the server closes the TCP connection after every response and after each stream ends, without a Connection: close header",
        "RFC 9112 section 9.6 (a server may close a persistent connection at any time); IIS idle connection timeouts in front of Exchange",
        &[],
    ),
    d(
        Gzip,
        "gzip",
        "http",
        "responses are gzip-compressed (Content-Encoding: gzip) when the request's Accept-Encoding allows gzip",
        "IIS dynamic compression on Exchange; both reference clients send Accept-Encoding: gzip (exchangelib, ews-javascript-api); RFC 9110 section 8.4",
        &[],
    ),
    d(
        ExtraHeaders,
        "extra-headers",
        "http",
        "responses carry request-id, X-FEServer, X-BEServer, X-CalculatedBETarget, X-DiagInfo and an X-BackEndOverrideCookie Set-Cookie",
        "learn.microsoft.com 'Instrumenting client requests for EWS and REST in Exchange' (response headers); 'Maintain affinity ... Mailbox server' (X-BackEndOverrideCookie)",
        &[],
    ),
    DialectInfo {
        profile: Some("exchange2010"),
        version: Some("Exchange2010_SP1"),
        ..d(
            SoftDeleteAsDeleted,
            "soft-delete-as-deleted",
            "events",
            "DeleteItem SoftDelete raises a DeletedEvent of the item (plus the parent's ModifiedEvent), not a MovedEvent to the dumpster (Exchange 2010)",
            "EWS 'Pull notifications for EWS deletion-related mailbox events' (C-DEL): version-dependent soft-delete events",
            &[],
        )
    },
];

impl Dialect {
    /// Every dialect, in catalogue order.
    pub fn all() -> impl Iterator<Item = Dialect> {
        DIALECTS.iter().map(|i| i.dialect)
    }

    pub fn info(self) -> &'static DialectInfo {
        &DIALECTS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The dialect with this kebab-case name.
    pub fn from_name(name: &str) -> Option<Dialect> {
        DIALECTS
            .iter()
            .find(|i| i.name == name.trim())
            .map(|i| i.dialect)
    }

    /// Whether the two cannot be on together.
    pub fn conflicts_with(self, other: Dialect) -> bool {
        self.info().excludes.contains(&other) || other.info().excludes.contains(&self)
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a list of dialect names cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialectError {
    #[error("unknown dialect `{name}` (known: {}, or `all`)", known_names())]
    Unknown { name: String },
    #[error("dialects `{0}` and `{1}` exclude each other")]
    Conflict(Dialect, Dialect),
    #[error("dialects `{0}` and `{1}` need different profiles")]
    Profiles(Dialect, Dialect),
}

fn known_names() -> String {
    DIALECTS
        .iter()
        .map(|i| i.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::str::FromStr for Dialect {
    type Err = DialectError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::from_name(s).ok_or_else(|| DialectError::Unknown {
            name: s.to_string(),
        })
    }
}

/// The dialects a server runs with (empty: the faithful reference server).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DialectSet(u64);

impl DialectSet {
    pub fn none() -> Self {
        DialectSet(0)
    }

    pub fn of(dialects: impl IntoIterator<Item = Dialect>) -> Self {
        let mut s = DialectSet::none();
        for d in dialects {
            s.insert(d);
        }
        s
    }

    /// Every dialect that needs no profile, skipping any that conflicts with
    /// one taken earlier in catalogue order (`--dialect all`).
    pub fn all_compatible() -> Self {
        let mut s = DialectSet::none();
        for info in DIALECTS {
            if info.profile.is_none() && !s.iter().any(|t| t.conflicts_with(info.dialect)) {
                s.insert(info.dialect);
            }
        }
        s
    }

    /// Reads kebab-case names (`serve --dialect`, the config file); `all`
    /// stands for [`DialectSet::all_compatible`]. Conflicting names are refused.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, DialectError> {
        let mut s = DialectSet::none();
        for n in names {
            let n = n.as_ref().trim();
            if n == "all" {
                s = DialectSet(s.0 | DialectSet::all_compatible().0);
            } else {
                s.insert(n.parse()?);
            }
        }
        s.check()?;
        Ok(s)
    }

    /// Refuses sets with conflicting dialects or two different profiles.
    pub fn check(&self) -> Result<(), DialectError> {
        for a in self.iter() {
            for b in self.iter().filter(|b| *b > a) {
                if a.conflicts_with(b) {
                    return Err(DialectError::Conflict(a, b));
                }
                if let (Some(p), Some(q)) = (a.info().profile, b.info().profile)
                    && p != q
                {
                    return Err(DialectError::Profiles(a, b));
                }
            }
        }
        Ok(())
    }

    /// The profile the set needs, if any of its dialects needs one.
    pub fn profile(&self) -> Option<&'static str> {
        self.iter().find_map(|d| d.info().profile)
    }

    /// The RequestServerVersion the set needs, if any.
    pub fn version(&self) -> Option<&'static str> {
        self.iter().find_map(|d| d.info().version)
    }

    pub fn insert(&mut self, dialect: Dialect) {
        self.0 |= 1 << (dialect as u8);
    }

    pub fn has(&self, dialect: Dialect) -> bool {
        self.0 & (1 << (dialect as u8)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn iter(&self) -> impl Iterator<Item = Dialect> + '_ {
        Dialect::all().filter(|d| self.has(*d))
    }
}

impl std::fmt::Debug for DialectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Dialect::name))
            .finish()
    }
}

impl std::fmt::Display for DialectSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.iter().map(Dialect::name).collect();
        f.write_str(&names.join("+"))
    }
}

/// The ServerVersionInfo a version dialect reports instead of the configured one.
pub fn server_version(d: &DialectSet) -> Option<ServerVersionInfo> {
    let v = |major, minor, major_build, minor_build, version: &str| ServerVersionInfo {
        major,
        minor,
        major_build,
        minor_build,
        version: version.to_string(),
    };
    if d.has(Dialect::ServerVersion2010Sp1) {
        Some(v(14, 1, 218, 15, "Exchange2010_SP1"))
    } else if d.has(Dialect::ServerVersion2013Rtm) {
        Some(v(15, 0, 516, 29, "Exchange2013"))
    } else if d.has(Dialect::ServerVersionOnline) {
        Some(v(15, 20, 2835, 22, "V2018_01_08"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;

//! ResponseClass and ResponseCode.

use std::fmt;

/// `t:ResponseClassType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    Success,
    Warning,
    Error,
}

impl ResponseClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Success => "Success",
            ResponseClass::Warning => "Warning",
            ResponseClass::Error => "Error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Success" => Some(ResponseClass::Success),
            "Warning" => Some(ResponseClass::Warning),
            "Error" => Some(ResponseClass::Error),
            _ => None,
        }
    }
}

impl fmt::Display for ResponseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! response_codes {
    ($($name:ident),+ $(,)?) => {
        /// The `m:ResponseCodeType` values this project knows by name: every
        /// code the notification digest lists (section 1.7) and the generic
        /// ones the item and folder operations need. Any other schema value
        /// is carried as [`ResponseCode::Other`] so a target is never
        /// misreported for using a code we did not list.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ResponseCode {
            $($name,)+
            Other(String),
        }

        impl ResponseCode {
            /// Every named code, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$(stringify!($name)),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $(ResponseCode::$name => stringify!($name),)+
                    ResponseCode::Other(s) => s,
                }
            }

            /// Any non-empty string is a code; unknown ones become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $(stringify!($name) => ResponseCode::$name,)+
                    other => ResponseCode::Other(other.to_string()),
                }
            }

            pub fn is_known(&self) -> bool {
                !matches!(self, ResponseCode::Other(_))
            }
        }
    };
}

response_codes! {
    NoError,
    // Subscribe
    ErrorSubscriptionDelegateAccessNotSupported,
    ErrorInvalidWatermark,
    ErrorInvalidPushSubscriptionUrl,
    ErrorInvalidSubscriptionRequest,
    ErrorExceededSubscriptionCount,
    ErrorProxyRequestNotAllowed,
    // GetEvents / Unsubscribe / streaming
    ErrorSubscriptionAccessDenied,
    ErrorSubscriptionNotFound,
    ErrorInvalidPullSubscriptionId,
    ErrorExpiredSubscription,
    ErrorInvalidSubscription,
    ErrorReadEventsFailed,
    ErrorEventNotFound,
    ErrorMissedNotificationEvents,
    ErrorNewEventStreamConnectionOpened,
    ErrorExceededConnectionCount,
    ErrorSubscriptionUnsubscribed,
    ErrorProxiedSubscriptionCallFailure,
    // every operation
    ErrorServerBusy,
    ErrorInvalidServerVersion,
    ErrorSchemaValidation,
    ErrorInvalidRequest,
    ErrorImpersonateUserDenied,
    ErrorImpersonationDenied,
    ErrorImpersonationFailed,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorNonExistentMailbox,
    ErrorMailboxMoveInProgress,
    ErrorMailboxStoreUnavailable,
    ErrorConnectionFailed,
    ErrorInternalServerError,
    ErrorTimeoutExpired,
    ErrorInvalidOperation,
    ErrorAccessDenied,
    // folders and items
    ErrorFolderNotFound,
    ErrorItemNotFound,
    ErrorInvalidIdMalformed,
    ErrorInvalidIdEmpty,
    ErrorStaleObject,
    ErrorChangeKeyRequired,
    ErrorFolderExists,
    ErrorDeleteDistinguishedFolder,
    ErrorMoveDistinguishedFolder,
    ErrorInvalidRecipients,
    ErrorCannotDeleteObject,
    ErrorInvalidPropertySet,
    ErrorInvalidOperationForDistinguishedFolder,
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ResponseCode {
    fn from(s: &str) -> Self {
        ResponseCode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for name in ResponseCode::KNOWN {
            let code = ResponseCode::parse(name);
            assert!(code.is_known());
            assert_eq!(code.as_str(), *name);
        }
        let other = ResponseCode::parse("ErrorSomethingNew");
        assert_eq!(other, ResponseCode::Other("ErrorSomethingNew".into()));
        assert!(!other.is_known());
    }

    #[test]
    fn classes_parse_exactly() {
        assert_eq!(
            ResponseClass::parse("Success"),
            Some(ResponseClass::Success)
        );
        assert_eq!(ResponseClass::parse("success"), None);
    }
}

//! Whether an answer is its request's: the SOAP Body's operation element
//! against the request's.

/// What an answer's SOAP Body holds, against what the request asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `<Op>Response` for the request's `<Op>`.
    Answers,
    /// A SOAP fault.
    Fault,
    /// Another operation's response element (a local name ending in
    /// `Response`).
    Other(String),
    /// No Body element to compare (not SOAP, an empty Body) or the
    /// request's operation is unknown: other checks judge such answers.
    Unknown,
}

/// Compares the answer's operation element with the request's.
pub fn reply(request: &str, response: &str) -> Reply {
    let Some(got) = body_operation(response) else {
        return Reply::Unknown;
    };
    if got == "Fault" {
        return Reply::Fault;
    }
    match body_operation(request) {
        Some(op) if got == format!("{op}Response") => Reply::Answers,
        // Only another operation's response element says "out of step";
        // anything else in the Body is the structure checks' to judge.
        Some(_) if got.ends_with("Response") => Reply::Other(got),
        _ => Reply::Unknown,
    }
}

/// The request's operation as a report names it.
pub(crate) fn operation_label(request: &str) -> String {
    body_operation(request).unwrap_or_else(|| "a request without a readable operation".into())
}

/// The local name of the SOAP Body's first element, when `text` is an
/// Envelope whose Body has one. A streaming scan that stops there: it never
/// expands entities and costs nothing on a large answer.
pub fn body_operation(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut in_body = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                let name = e.local_name();
                match depth {
                    1 if name.as_ref() != b"Envelope" => return None,
                    2 if name.as_ref() == b"Body" => in_body = true,
                    3 if in_body => return Some(String::from_utf8_lossy(name.as_ref()).into()),
                    _ => {}
                }
            }
            Ok(Event::Empty(e)) => {
                let name = e.local_name();
                match depth + 1 {
                    1 => return None,
                    3 if in_body => return Some(String::from_utf8_lossy(name.as_ref()).into()),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => {
                if depth == 2 && in_body {
                    return None;
                }
                depth = depth.saturating_sub(1);
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

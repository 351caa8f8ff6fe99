//! Reading a GetStreamingEvents response: the envelopes of one long HTTP
//! body, each stamped with when it arrived, under caller-given deadlines.
//!
//! The byte-level work is in [`split`], which is pure; this module only
//! moves bytes from the network into it and keeps the evidence a verdict
//! needs (what arrived, when, and what was left unfinished).

mod split;

use std::collections::VecDeque;
use std::fmt::Display;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

pub use split::{
    DEFAULT_MAX_ENVELOPE, EnvelopeSplitter, Incomplete, SplitEnvelope, SplitError, SplitNote, Tail,
    evidence, split_all,
};

use ews_proto::ews::{GetStreamingEventsResponse, ParseError, SoapFault, envelope};
use ews_proto::xml::parse_document;

/// How many past envelopes the reader remembers (as summaries).
const HISTORY: usize = 64;

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// One envelope as it arrived on the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrivedEnvelope {
    /// 0 for the first envelope of the stream.
    pub index: usize,
    /// Stream offset of the envelope's first byte.
    pub offset: u64,
    pub text: String,
    /// The Envelope element's prefix; `None` when unprefixed.
    pub prefix: Option<String>,
    pub declaration: Option<String>,
    pub notes: Vec<SplitNote>,
    /// When the chunk that completed it was received.
    pub arrived: Instant,
    pub elapsed_since_open: Duration,
}

/// What the reader remembers of a past envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSummary {
    pub index: usize,
    pub offset: u64,
    pub len: usize,
    pub elapsed_since_open: Duration,
    pub notes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error(
        "no complete envelope within {waited:?} ({envelopes_so_far} envelope(s) read before); {}",
        partial_text(.partial)
    )]
    Deadline {
        waited: Duration,
        envelopes_so_far: usize,
        partial: Option<Incomplete>,
    },
    #[error(
        "the body ended inside an envelope: {} bytes from byte {} arrived: {}",
        .partial.len, .partial.offset, .partial.evidence
    )]
    Truncated { partial: Incomplete },
    #[error("reading the body failed: {message}; {}", partial_text(.partial))]
    Body {
        message: String,
        partial: Option<Incomplete>,
    },
    /// One envelope could not be delivered; the stream can still be read.
    #[error(transparent)]
    Split(#[from] SplitError),
}

fn partial_text(partial: &Option<Incomplete>) -> String {
    match partial {
        None => "nothing pending".into(),
        Some(p) => format!(
            "{} bytes of an unfinished envelope from byte {}: {}",
            p.len, p.offset, p.evidence
        ),
    }
}

/// Reads envelopes from a streaming body.
pub struct StreamReader {
    body: Body,
    splitter: EnvelopeSplitter,
    ready: VecDeque<(Result<SplitEnvelope, SplitError>, Instant)>,
    opened: Instant,
    next_index: usize,
    history: VecDeque<EnvelopeSummary>,
    ended: bool,
    tail_notes: Vec<SplitNote>,
}

impl StreamReader {
    /// Reads from any byte stream; its errors are kept as text.
    pub fn new<S, E>(body: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Display,
    {
        StreamReader {
            body: Box::pin(body.map(|r| r.map_err(|e| e.to_string()))),
            splitter: EnvelopeSplitter::new(),
            ready: VecDeque::new(),
            opened: Instant::now(),
            next_index: 0,
            history: VecDeque::new(),
            ended: false,
            tail_notes: Vec::new(),
        }
    }

    /// Reads the body of a GetStreamingEvents response (status and headers
    /// are the caller's business).
    pub fn from_response(response: reqwest::Response) -> Self {
        Self::new(response.bytes_stream())
    }

    /// Reads an opened response's body (see `Transport::open`).
    pub fn from_body(body: crate::client::transport::BodyStream) -> Self {
        Self::new(body)
    }

    /// Measures `elapsed_since_open` from `opened` (e.g. when the request was sent).
    pub fn opened_at(mut self, opened: Instant) -> Self {
        self.opened = opened;
        self
    }

    pub fn with_max_envelope(mut self, max_envelope: usize) -> Self {
        self.splitter = EnvelopeSplitter::with_max_envelope(max_envelope);
        self
    }

    /// The next envelope. `Ok(None)` once the body has ended cleanly between
    /// envelopes. After a `Deadline` or `Split` error the reader can be asked again.
    pub async fn next_envelope(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<ArrivedEnvelope>, StreamError> {
        let started = tokio::time::Instant::now();
        loop {
            if let Some((result, arrived)) = self.ready.pop_front() {
                return Ok(Some(self.deliver(result?, arrived)));
            }
            if self.ended {
                return Ok(None);
            }
            // Checked before reading too: `timeout_at` polls the read first,
            // so a body that is always ready (a flood) would never time out.
            let late = tokio::time::Instant::now() >= deadline;
            let next = async {
                if late {
                    Err(())
                } else {
                    tokio::time::timeout_at(deadline, self.body.next())
                        .await
                        .map_err(drop)
                }
            };
            let chunk = match next.await {
                Err(()) => {
                    return Err(StreamError::Deadline {
                        waited: started.elapsed(),
                        envelopes_so_far: self.next_index,
                        partial: self.splitter.partial(),
                    });
                }
                Ok(chunk) => chunk,
            };
            match chunk {
                Some(Ok(bytes)) => {
                    let arrived = Instant::now();
                    self.splitter.push(&bytes);
                    self.ready
                        .extend(self.splitter.by_ref().map(|r| (r, arrived)));
                }
                Some(Err(message)) => {
                    self.ended = true;
                    let partial = self.splitter.partial();
                    self.splitter.finish();
                    return Err(StreamError::Body { message, partial });
                }
                None => {
                    self.ended = true;
                    let tail = self.splitter.finish();
                    let arrived = Instant::now();
                    self.ready
                        .extend(self.splitter.by_ref().map(|r| (r, arrived)));
                    self.tail_notes = tail.notes;
                    if let Some(partial) = tail.incomplete {
                        return Err(StreamError::Truncated { partial });
                    }
                }
            }
        }
    }

    fn deliver(&mut self, env: SplitEnvelope, arrived: Instant) -> ArrivedEnvelope {
        let index = self.next_index;
        self.next_index += 1;
        let elapsed_since_open = arrived.saturating_duration_since(self.opened);
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(EnvelopeSummary {
            index,
            offset: env.offset,
            len: env.text.len(),
            elapsed_since_open,
            notes: env.notes.len(),
        });
        ArrivedEnvelope {
            index,
            offset: env.offset,
            text: env.text,
            prefix: env.prefix,
            declaration: env.declaration,
            notes: env.notes,
            arrived,
            elapsed_since_open,
        }
    }

    /// Envelopes delivered so far.
    pub fn envelopes_read(&self) -> usize {
        self.next_index
    }

    /// Bytes received so far.
    pub fn bytes_read(&self) -> u64 {
        self.splitter.position()
    }

    /// Summaries of the most recent envelopes (oldest first, bounded).
    pub fn history(&self) -> &VecDeque<EnvelopeSummary> {
        &self.history
    }

    /// Whether the body has ended (cleanly or not).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Junk or declarations after the last envelope, known once the body ended.
    pub fn tail_notes(&self) -> &[SplitNote] {
        &self.tail_notes
    }
}

/// Why an envelope is not a GetStreamingEvents response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    #[error("SOAP fault {}: {}", .0.fault_code, .0.fault_string)]
    Fault(SoapFault),
    #[error(transparent)]
    Shape(#[from] ParseError),
}

/// Reads one stream envelope as a GetStreamingEvents response.
pub fn parse_envelope(text: &str) -> Result<GetStreamingEventsResponse, EnvelopeError> {
    let doc = parse_document(text).map_err(|e| EnvelopeError::NotXml(e.to_string()))?;
    let opened = envelope::open(&doc)?;
    if let Some(fault) = opened.fault() {
        return Err(EnvelopeError::Fault(fault));
    }
    Ok(GetStreamingEventsResponse::parse(opened.payload)?)
}

//! The pure core of the streaming reader: cuts a byte stream into the SOAP
//! envelopes it carries, whatever the chunking, without I/O and without
//! panicking on any input.
//!
//! A GetStreamingEvents body is a series of complete envelopes. Servers
//! differ in the envelope prefix, in XML declarations and in whitespace, so
//! the splitter follows element nesting with a small tag scanner instead of
//! searching for literal strings, and it reports (rather than rejects) the
//! irregularities that matter to real clients.
//!
//! Every byte is looked at once by one state machine, so the result depends
//! only on the byte sequence, never on where chunks begin and end.

use std::collections::VecDeque;
use std::fmt;

/// The default bound on one envelope's size.
pub const DEFAULT_MAX_ENVELOPE: usize = 8 * 1024 * 1024;

/// Tag names longer than this are kept truncated (no element we look for is that long).
const NAME_CAP: usize = 256;
/// Bound on the kept text of markup between envelopes (a declaration, a junk tag).
const MARKUP_CAP: usize = 1024;
/// Bound on the kept sample of junk between envelopes.
const JUNK_SAMPLE_CAP: usize = 256;
/// Evidence longer than this keeps only its head and its tail.
const EVIDENCE_CAP: usize = 2048;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One envelope cut out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitEnvelope {
    /// Stream offset of the envelope's `<`.
    pub offset: u64,
    /// The envelope's exact bytes, from `<` of the start tag to `>` of the end tag.
    pub text: String,
    /// The Envelope element's prefix (`s`, `soap`, …); `None` when unprefixed.
    pub prefix: Option<String>,
    /// The (last) XML declaration between the previous envelope and this one.
    pub declaration: Option<String>,
    pub notes: Vec<SplitNote>,
}

/// An irregularity seen in the stream. None of them stops the splitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitNote {
    /// A UTF-8 byte order mark opened the stream.
    ByteOrderMark,
    /// More than one XML declaration preceded one envelope (a known server bug).
    RepeatedDeclaration { count: usize },
    /// An XML declaration inside an envelope, where it is not well-formed XML.
    DeclarationInside { offset: u64 },
    /// Non-whitespace bytes between envelopes; they were skipped.
    Junk {
        offset: u64,
        len: u64,
        sample: String,
    },
    /// Declarations at the end of the stream with no envelope after them.
    DeclarationWithoutEnvelope { count: usize },
    /// The Envelope start tag holds a line break, or something other than a
    /// space right after the name. Legal XML, but exchangelib finds the tag
    /// name by splitting on a space, so `breaks_exchangelib` tells whether it
    /// misses this envelope.
    LineBreakInStartTag { breaks_exchangelib: bool },
    /// The tag that closed the envelope is not named Envelope (nesting is off).
    UnexpectedEndTag { name: String },
}

impl fmt::Display for SplitNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitNote::ByteOrderMark => write!(f, "the stream starts with a UTF-8 byte order mark"),
            SplitNote::RepeatedDeclaration { count } => write!(
                f,
                "{count} XML declarations precede this envelope (at most one is legal)"
            ),
            SplitNote::DeclarationInside { offset } => write!(
                f,
                "an XML declaration appears inside the envelope at byte {offset}"
            ),
            SplitNote::Junk {
                offset,
                len,
                sample,
            } => write!(
                f,
                "{len} bytes of non-envelope content at byte {offset} were skipped: {sample:?}"
            ),
            SplitNote::DeclarationWithoutEnvelope { count } => write!(
                f,
                "the stream ends with {count} XML declaration(s) and no envelope after them"
            ),
            SplitNote::LineBreakInStartTag { breaks_exchangelib } => {
                if *breaks_exchangelib {
                    write!(
                        f,
                        "the Envelope start tag name is followed by a line break or tab, not a space; exchangelib does not see this envelope"
                    )
                } else {
                    write!(f, "the Envelope start tag contains a line break")
                }
            }
            SplitNote::UnexpectedEndTag { name } => {
                write!(f, "the envelope is closed by `</{name}>`")
            }
        }
    }
}

/// An envelope the splitter could not deliver; splitting goes on after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error(
        "the envelope starting at byte {offset} exceeds the limit of {limit} bytes; its bytes were dropped and it is skipped"
    )]
    TooLarge { offset: u64, limit: usize },
    #[error(
        "the envelope starting at byte {offset} is not UTF-8: invalid byte at stream offset {bad_at}; envelope: {evidence}"
    )]
    InvalidUtf8 {
        offset: u64,
        bad_at: u64,
        evidence: String,
    },
}

/// What is left when the stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tail {
    /// Junk or declarations after the last envelope.
    pub notes: Vec<SplitNote>,
    /// An envelope (or a tag) the stream cut off.
    pub incomplete: Option<Incomplete>,
}

/// An unfinished envelope or tag, as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incomplete {
    pub offset: u64,
    /// Bytes received since `offset`.
    pub len: u64,
    /// The received bytes (lossy UTF-8, head and tail kept when long).
    pub evidence: String,
}

/// The tokenizer state. Only the bytes needed to name things are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Text,
    /// Right after `<`.
    Open,
    Name {
        end_tag: bool,
    },
    /// Inside a tag after its name.
    Attrs {
        end_tag: bool,
        quote: Option<u8>,
        slash: bool,
    },
    /// After `<!`, deciding between comment, CDATA and a markup declaration.
    Bang,
    Comment {
        dashes: u8,
    },
    CData {
        brackets: u8,
    },
    /// `<!DOCTYPE …>` and the like; an internal subset may hold `>`.
    MarkupDecl {
        quote: Option<u8>,
        brackets: u32,
    },
    Pi {
        target_done: bool,
        question: bool,
    },
}

/// What a byte completed, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A start tag's name ended before its `>` (on whitespace or `/`).
    NameEnd {
        separator: u8,
    },
    Tag {
        end_tag: bool,
        self_closing: bool,
    },
    Comment,
    CData,
    MarkupDecl,
    Pi,
}

/// The envelope being collected.
#[derive(Debug)]
struct Collecting {
    offset: u64,
    /// Dropped (and `oversized` set) once the size limit is passed.
    buf: Vec<u8>,
    oversized: bool,
    depth: u64,
    /// The start tag's `>` has been seen.
    opened: bool,
    /// The first byte after the start tag's name.
    separator: Option<u8>,
    line_break: bool,
    prefix: Option<String>,
    declaration: Option<String>,
    notes: Vec<SplitNote>,
}

#[derive(Debug)]
struct JunkRun {
    offset: u64,
    end: u64,
    sample: Vec<u8>,
}

/// Cuts a byte stream into SOAP envelopes: [`push`](Self::push) bytes as
/// they arrive, then take envelopes with [`Iterator::next`] until it returns
/// `None` (more bytes may produce more envelopes later).
#[derive(Debug)]
pub struct EnvelopeSplitter {
    max_envelope: usize,
    /// Offset of the next byte.
    pos: u64,
    lex: Lex,
    name: Vec<u8>,
    /// The first bytes after `<!`, to recognise `--` and `[CDATA[`.
    bang: Vec<u8>,
    pi_target: Vec<u8>,
    /// Offset of the `<` of the current markup.
    markup_start: u64,
    /// The current markup's bytes, kept only between envelopes (bounded).
    markup: Vec<u8>,
    bom_matched: usize,
    // Between envelopes.
    bom_seen: bool,
    declarations: usize,
    last_declaration: Option<String>,
    junk: Option<JunkRun>,
    current: Option<Collecting>,
    ready: VecDeque<Result<SplitEnvelope, SplitError>>,
}

impl Default for EnvelopeSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvelopeSplitter {
    pub fn new() -> Self {
        Self::with_max_envelope(DEFAULT_MAX_ENVELOPE)
    }

    /// A splitter whose envelopes may not exceed `max_envelope` bytes.
    pub fn with_max_envelope(max_envelope: usize) -> Self {
        EnvelopeSplitter {
            max_envelope,
            pos: 0,
            lex: Lex::Text,
            name: Vec::new(),
            bang: Vec::new(),
            pi_target: Vec::new(),
            markup_start: 0,
            markup: Vec::new(),
            bom_matched: 0,
            bom_seen: false,
            declarations: 0,
            last_declaration: None,
            junk: None,
            current: None,
            ready: VecDeque::new(),
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.step(b);
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether an envelope has started and not yet ended.
    pub fn in_envelope(&self) -> bool {
        self.current.is_some()
    }

    /// The unfinished envelope or tag, if any, as evidence.
    pub fn partial(&self) -> Option<Incomplete> {
        if let Some(c) = &self.current {
            let evidence = if c.oversized {
                format!(
                    "(an envelope over the {}-byte limit; its bytes were not kept)",
                    self.max_envelope
                )
            } else {
                evidence(&c.buf)
            };
            return Some(Incomplete {
                offset: c.offset,
                len: self.pos - c.offset,
                evidence,
            });
        }
        if self.lex != Lex::Text {
            return Some(Incomplete {
                offset: self.markup_start,
                len: self.pos - self.markup_start,
                evidence: evidence(&self.markup),
            });
        }
        None
    }

    /// Ends the stream: reports what follows the last envelope and what was
    /// cut off, and makes the splitter ready for a new stream (envelopes not
    /// yet taken stay available).
    pub fn finish(&mut self) -> Tail {
        let incomplete = self.partial();
        let mut notes = Vec::new();
        if let Some(j) = self.junk.take() {
            notes.push(junk_note(j));
        }
        if self.declarations > 0 {
            notes.push(SplitNote::DeclarationWithoutEnvelope {
                count: self.declarations,
            });
        }
        let ready = std::mem::take(&mut self.ready);
        *self = Self::with_max_envelope(self.max_envelope);
        self.ready = ready;
        Tail { notes, incomplete }
    }

    fn step(&mut self, b: u8) {
        let pos = self.pos;
        self.pos += 1;

        if self.current.is_none() && self.lex == Lex::Text && self.skip_bom(pos, b) {
            return;
        }
        if b == b'<' && self.lex == Lex::Text {
            self.markup_start = pos;
            self.markup.clear();
        }
        let in_markup = self.lex != Lex::Text || b == b'<';
        match &mut self.current {
            Some(c) => {
                if !c.oversized {
                    if c.buf.len() >= self.max_envelope {
                        c.oversized = true;
                        c.buf = Vec::new();
                        self.ready.push_back(Err(SplitError::TooLarge {
                            offset: c.offset,
                            limit: self.max_envelope,
                        }));
                    } else {
                        c.buf.push(b);
                    }
                }
                if !c.opened && (b == b'\n' || b == b'\r') {
                    c.line_break = true;
                }
            }
            None if in_markup => {
                if self.markup.len() < MARKUP_CAP {
                    self.markup.push(b);
                }
            }
            None => {
                if !b.is_ascii_whitespace() {
                    self.add_junk(pos, pos + 1, &[b]);
                } else if let Some(j) = &mut self.junk
                    && j.sample.len() < JUNK_SAMPLE_CAP
                {
                    j.sample.push(b);
                }
            }
        }

        let Some(token) = self.lex(b) else {
            return;
        };
        if self.current.is_none() {
            self.between_envelopes(token, pos);
        }
        if self.current.is_some() {
            self.inside_envelope(token);
        }
    }

    /// Skips a byte order mark at the very start of the stream.
    fn skip_bom(&mut self, pos: u64, b: u8) -> bool {
        if pos > 2 || pos != self.bom_matched as u64 {
            return false;
        }
        if b == BOM[self.bom_matched] {
            self.bom_matched += 1;
            if self.bom_matched == BOM.len() {
                self.bom_seen = true;
            }
            return true;
        }
        // A broken mark: what was skipped is junk after all.
        let skipped = self.bom_matched;
        self.bom_matched = 0;
        if skipped > 0 {
            self.add_junk(0, skipped as u64, &BOM[..skipped]);
        }
        false
    }

    /// Advances the tokenizer by one byte.
    fn lex(&mut self, b: u8) -> Option<Token> {
        let ws = b.is_ascii_whitespace();
        match self.lex {
            Lex::Text => {
                if b == b'<' {
                    self.lex = Lex::Open;
                }
                None
            }
            Lex::Open => {
                self.name.clear();
                match b {
                    b'/' => self.lex = Lex::Name { end_tag: true },
                    b'!' => {
                        self.bang.clear();
                        self.lex = Lex::Bang;
                    }
                    b'?' => {
                        self.pi_target.clear();
                        self.lex = Lex::Pi {
                            target_done: false,
                            question: false,
                        };
                    }
                    _ => {
                        self.lex = Lex::Name { end_tag: false };
                        return self.lex(b);
                    }
                }
                None
            }
            Lex::Name { end_tag } => {
                if b == b'>' {
                    self.lex = Lex::Text;
                    return Some(Token::Tag {
                        end_tag,
                        self_closing: false,
                    });
                }
                if ws || b == b'/' {
                    self.lex = Lex::Attrs {
                        end_tag,
                        quote: None,
                        slash: b == b'/',
                    };
                    return (!end_tag).then_some(Token::NameEnd { separator: b });
                }
                if self.name.len() < NAME_CAP {
                    self.name.push(b);
                }
                None
            }
            Lex::Attrs {
                end_tag,
                quote,
                slash,
            } => {
                let (quote, slash) = match quote {
                    Some(q) if b == q => (None, false),
                    Some(q) => (Some(q), false),
                    None if b == b'>' => {
                        self.lex = Lex::Text;
                        return Some(Token::Tag {
                            end_tag,
                            self_closing: slash && !end_tag,
                        });
                    }
                    None if b == b'"' || b == b'\'' => (Some(b), false),
                    None => (None, b == b'/'),
                };
                self.lex = Lex::Attrs {
                    end_tag,
                    quote,
                    slash,
                };
                None
            }
            Lex::Bang => {
                self.bang.push(b);
                if self.bang == b"--" {
                    self.lex = Lex::Comment { dashes: 0 };
                } else if self.bang == b"[CDATA[" {
                    self.lex = Lex::CData { brackets: 0 };
                } else if !b"--".starts_with(&self.bang) && !b"[CDATA[".starts_with(&self.bang) {
                    self.lex = Lex::MarkupDecl {
                        quote: None,
                        brackets: 0,
                    };
                    // The byte that ruled out comment and CDATA may itself end the declaration.
                    let head = self.bang.clone();
                    if let Some(&last) = head.last() {
                        for &x in &head[..head.len() - 1] {
                            self.markup_decl(x);
                        }
                        return self.markup_decl(last);
                    }
                }
                None
            }
            Lex::Comment { dashes } => {
                if b == b'>' && dashes >= 2 {
                    self.lex = Lex::Text;
                    return Some(Token::Comment);
                }
                let dashes = if b == b'-' { (dashes + 1).min(2) } else { 0 };
                self.lex = Lex::Comment { dashes };
                None
            }
            Lex::CData { brackets } => {
                if b == b'>' && brackets >= 2 {
                    self.lex = Lex::Text;
                    return Some(Token::CData);
                }
                let brackets = if b == b']' { (brackets + 1).min(2) } else { 0 };
                self.lex = Lex::CData { brackets };
                None
            }
            Lex::MarkupDecl { .. } => self.markup_decl(b),
            Lex::Pi {
                target_done,
                question,
            } => {
                if b == b'>' && question {
                    self.lex = Lex::Text;
                    return Some(Token::Pi);
                }
                let target_done = target_done || ws || b == b'?';
                if !target_done && self.pi_target.len() < NAME_CAP {
                    self.pi_target.push(b);
                }
                self.lex = Lex::Pi {
                    target_done,
                    question: b == b'?',
                };
                None
            }
        }
    }

    fn markup_decl(&mut self, b: u8) -> Option<Token> {
        let Lex::MarkupDecl { quote, brackets } = self.lex else {
            return None;
        };
        let (quote, brackets) = match quote {
            Some(q) if b == q => (None, brackets),
            Some(q) => (Some(q), brackets),
            None => match b {
                b'>' if brackets == 0 => {
                    self.lex = Lex::Text;
                    return Some(Token::MarkupDecl);
                }
                b'"' | b'\'' => (Some(b), brackets),
                b'[' => (None, brackets.saturating_add(1)),
                b']' => (None, brackets.saturating_sub(1)),
                _ => (None, brackets),
            },
        };
        self.lex = Lex::MarkupDecl { quote, brackets };
        None
    }

    /// Handles a token outside any envelope: an Envelope start opens one,
    /// a declaration is remembered, a comment is ignored, the rest is junk.
    fn between_envelopes(&mut self, token: Token, pos: u64) {
        match token {
            Token::NameEnd { separator } => {
                if let Some(prefix) = envelope_prefix(&self.name) {
                    self.open_envelope(prefix, Some(separator));
                }
            }
            Token::Tag { end_tag: false, .. } => {
                if let Some(prefix) = envelope_prefix(&self.name) {
                    self.open_envelope(prefix, None);
                } else {
                    self.markup_is_junk(pos);
                }
            }
            Token::Pi if self.pi_target == b"xml" => {
                self.declarations += 1;
                self.last_declaration = Some(String::from_utf8_lossy(&self.markup).into_owned());
            }
            Token::Comment => {}
            Token::Tag { end_tag: true, .. } | Token::Pi | Token::CData | Token::MarkupDecl => {
                self.markup_is_junk(pos)
            }
        }
    }

    fn markup_is_junk(&mut self, pos: u64) {
        let markup = std::mem::take(&mut self.markup);
        self.add_junk(self.markup_start, pos + 1, &markup);
        self.markup = markup;
    }

    fn add_junk(&mut self, offset: u64, end: u64, bytes: &[u8]) {
        let run = self.junk.get_or_insert_with(|| JunkRun {
            offset,
            end,
            sample: Vec::new(),
        });
        run.end = end;
        let room = JUNK_SAMPLE_CAP.saturating_sub(run.sample.len());
        run.sample
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn open_envelope(&mut self, prefix: Option<String>, separator: Option<u8>) {
        let mut notes = Vec::new();
        if std::mem::take(&mut self.bom_seen) {
            notes.push(SplitNote::ByteOrderMark);
        }
        if self.declarations > 1 {
            notes.push(SplitNote::RepeatedDeclaration {
                count: self.declarations,
            });
        }
        self.declarations = 0;
        if let Some(j) = self.junk.take() {
            notes.push(junk_note(j));
        }
        let buf = std::mem::take(&mut self.markup);
        let oversized = buf.len() > self.max_envelope;
        if oversized {
            self.ready.push_back(Err(SplitError::TooLarge {
                offset: self.markup_start,
                limit: self.max_envelope,
            }));
        }
        self.current = Some(Collecting {
            offset: self.markup_start,
            line_break: buf.ends_with(b"\n") || buf.ends_with(b"\r"),
            buf: if oversized { Vec::new() } else { buf },
            oversized,
            depth: 0,
            opened: false,
            separator,
            prefix,
            declaration: self.last_declaration.take(),
            notes,
        });
    }

    /// Follows nesting inside an envelope and completes it at its end tag.
    fn inside_envelope(&mut self, token: Token) {
        let Some(c) = &mut self.current else {
            return;
        };
        match token {
            Token::NameEnd { .. } => {}
            Token::Tag {
                end_tag: false,
                self_closing,
            } => {
                if c.depth == 0 {
                    c.opened = true;
                    let breaks_exchangelib = c.separator.is_some_and(|s| s != b' ' && s != b'/');
                    if c.line_break || breaks_exchangelib {
                        c.notes
                            .push(SplitNote::LineBreakInStartTag { breaks_exchangelib });
                    }
                    if self_closing {
                        self.complete();
                        return;
                    }
                }
                if !self_closing {
                    c.depth += 1;
                }
            }
            Token::Tag { end_tag: true, .. } => {
                c.depth = c.depth.saturating_sub(1);
                if c.depth == 0 {
                    if envelope_prefix(&self.name).is_none() {
                        c.notes.push(SplitNote::UnexpectedEndTag {
                            name: String::from_utf8_lossy(&self.name).into_owned(),
                        });
                    }
                    self.complete();
                }
            }
            Token::Pi if self.pi_target == b"xml" => {
                c.notes.push(SplitNote::DeclarationInside {
                    offset: self.markup_start,
                });
            }
            Token::Pi | Token::Comment | Token::CData | Token::MarkupDecl => {}
        }
    }

    fn complete(&mut self) {
        let Some(c) = self.current.take() else {
            return;
        };
        if c.oversized {
            return;
        }
        let result = match String::from_utf8(c.buf) {
            Ok(text) => Ok(SplitEnvelope {
                offset: c.offset,
                text,
                prefix: c.prefix,
                declaration: c.declaration,
                notes: c.notes,
            }),
            Err(e) => Err(SplitError::InvalidUtf8 {
                offset: c.offset,
                bad_at: c.offset + e.utf8_error().valid_up_to() as u64,
                evidence: evidence(e.as_bytes()),
            }),
        };
        self.ready.push_back(result);
    }
}

impl Iterator for EnvelopeSplitter {
    type Item = Result<SplitEnvelope, SplitError>;

    /// The next complete envelope (or error) from the bytes pushed so far.
    fn next(&mut self) -> Option<Self::Item> {
        self.ready.pop_front()
    }
}

/// `Some(prefix)` when a tag name's local part is `Envelope`.
fn envelope_prefix(name: &[u8]) -> Option<Option<String>> {
    if name.len() >= NAME_CAP {
        return None;
    }
    match name.iter().rposition(|&b| b == b':') {
        None if name == b"Envelope" => Some(None),
        Some(i) if &name[i + 1..] == b"Envelope" => {
            Some(Some(String::from_utf8_lossy(&name[..i]).into_owned()))
        }
        _ => None,
    }
}

fn junk_note(j: JunkRun) -> SplitNote {
    SplitNote::Junk {
        offset: j.offset,
        len: j.end - j.offset,
        sample: String::from_utf8_lossy(&j.sample).trim_end().to_string(),
    }
}

/// Bytes as readable evidence: lossy UTF-8, only head and tail when long.
pub fn evidence(bytes: &[u8]) -> String {
    if bytes.len() <= EVIDENCE_CAP {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let half = EVIDENCE_CAP / 2;
    format!(
        "{}…[{} bytes omitted]…{}",
        String::from_utf8_lossy(&bytes[..half]),
        bytes.len() - 2 * half,
        String::from_utf8_lossy(&bytes[bytes.len() - half..])
    )
}

/// Splits a whole byte string at once (for tests and fuzzing).
pub fn split_all(bytes: &[u8]) -> (Vec<Result<SplitEnvelope, SplitError>>, Tail) {
    let mut s = EnvelopeSplitter::new();
    s.push(bytes);
    let out: Vec<_> = s.by_ref().collect();
    let tail = s.finish();
    (out, tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

    fn env(prefix: &str, body: &str) -> String {
        let (p, colon) = if prefix.is_empty() {
            ("", "")
        } else {
            (prefix, ":")
        };
        let xmlns = if prefix.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{p}")
        };
        format!(
            "<{p}{colon}Envelope {xmlns}=\"{SOAP}\"><{p}{colon}Body>{body}</{p}{colon}Body></{p}{colon}Envelope>"
        )
    }

    fn ok_texts(results: &[Result<SplitEnvelope, SplitError>]) -> Vec<&str> {
        results
            .iter()
            .map(|r| r.as_ref().expect("an envelope").text.as_str())
            .collect()
    }

    /// Feeds `bytes` cut at `cuts` (sorted offsets) and returns everything.
    fn split_chunked(
        bytes: &[u8],
        cuts: &[usize],
        max: usize,
    ) -> (Vec<Result<SplitEnvelope, SplitError>>, Tail) {
        let mut s = EnvelopeSplitter::with_max_envelope(max);
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let c = c.clamp(from, bytes.len());
            s.push(&bytes[from..c]);
            out.extend(s.by_ref());
            from = c;
        }
        let tail = s.finish();
        out.extend(s.by_ref());
        (out, tail)
    }

    #[test]
    fn finds_envelopes_with_any_prefix_or_none() {
        let a = env("", "<m:X xmlns:m=\"urn:m\"/>");
        let b = env("s", "<Y/>");
        let c = env("soap", "");
        let stream = format!("{a}\r\n  {b}\n{c}");
        let (out, tail) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![a.as_str(), b.as_str(), c.as_str()]);
        let prefixes: Vec<_> = out
            .iter()
            .map(|r| r.as_ref().expect("ok").prefix.clone())
            .collect();
        assert_eq!(prefixes, vec![None, Some("s".into()), Some("soap".into())]);
        assert!(out.iter().all(|r| r.as_ref().expect("ok").notes.is_empty()));
        assert_eq!(tail, Tail::default());
        let offsets: Vec<u64> = out.iter().map(|r| r.as_ref().expect("ok").offset).collect();
        assert_eq!(
            offsets,
            vec![0, a.len() as u64 + 4, (a.len() + b.len()) as u64 + 5]
        );
    }

    #[test]
    fn declarations_are_kept_and_duplicates_reported() {
        let d = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
        let e = env("s", "");
        let stream = format!("{d}{e}{d}\n{d}{e}{e}");
        let (out, _) = split_all(stream.as_bytes());
        let got: Vec<_> = out.into_iter().map(|r| r.expect("ok")).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].declaration.as_deref(), Some(d));
        assert!(got[0].notes.is_empty());
        assert_eq!(got[1].declaration.as_deref(), Some(d));
        assert_eq!(
            got[1].notes,
            vec![SplitNote::RepeatedDeclaration { count: 2 }]
        );
        assert_eq!(got[2].declaration, None);
        assert!(got[2].notes.is_empty());
    }

    #[test]
    fn a_declaration_inside_an_envelope_is_reported() {
        let e =
            format!("<Envelope xmlns=\"{SOAP}\"><Body><?xml version=\"1.0\"?></Body></Envelope>");
        let (out, _) = split_all(e.as_bytes());
        let got = out[0].as_ref().expect("ok");
        assert_eq!(got.text, e);
        let at = e.find("<?xml").expect("decl") as u64;
        assert_eq!(got.notes, vec![SplitNote::DeclarationInside { offset: at }]);
    }

    #[test]
    fn junk_between_envelopes_is_skipped_and_reported() {
        let e = env("", "");
        let stream = format!("{e}\nHTTP/1.1 garbage <foo a='1'>x</foo>\n{e}   tail");
        let (out, tail) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![e.as_str(), e.as_str()]);
        let second = out[1].as_ref().expect("ok");
        let start = e.len() as u64 + 1;
        let end = stream.find("</foo>").expect("foo") as u64 + 6;
        assert_eq!(
            second.notes,
            vec![SplitNote::Junk {
                offset: start,
                len: end - start,
                sample: "HTTP/1.1 garbage <foo a='1'>x</foo>".into()
            }]
        );
        assert!(matches!(&tail.notes[..], [SplitNote::Junk { sample, .. }] if sample == "tail"));
        assert_eq!(tail.incomplete, None);
    }

    #[test]
    fn nested_envelope_elements_do_not_end_the_envelope() {
        let body = "<x:Envelope xmlns:x=\"urn:x\"><Envelope/><Envelope></Envelope></x:Envelope>\
                    <!-- a > b - </s:Envelope> --><![CDATA[a > b ] </s:Envelope>]]>\
                    <a b=\"</s:Envelope>\" c='/>' d=\"x>\"/><?pi a > b </s:Envelope> ?>\
                    <!DOCTYPE x [ <!ENTITY y \"</s:Envelope>\"> ]>";
        let e = env("s", body);
        let stream = format!("{e}{e}");
        let (out, _) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![e.as_str(), e.as_str()]);
        assert!(out[0].as_ref().expect("ok").notes.is_empty());
    }

    #[test]
    fn end_tag_with_space_and_self_closing_envelope() {
        let a = format!("<s:Envelope xmlns:s=\"{SOAP}\"><s:Body/></s:Envelope >");
        let b = format!("<Envelope xmlns=\"{SOAP}\"/>");
        let stream = format!("{a}{b}{a}");
        let (out, tail) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![a.as_str(), b.as_str(), a.as_str()]);
        assert_eq!(tail, Tail::default());
    }

    #[test]
    fn line_breaks_in_the_start_tag_are_reported() {
        let right_after = format!("<Envelope\n xmlns=\"{SOAP}\"><Body/></Envelope>");
        let later = format!("<Envelope xmlns=\"{SOAP}\"\r\n xmlns:m=\"urn:m\"><Body/></Envelope>");
        let tab = format!("<Envelope\txmlns=\"{SOAP}\"><Body/></Envelope>");
        let plain = env("", "<a\n/>");
        let stream = format!("{right_after}{later}{tab}{plain}");
        let (out, _) = split_all(stream.as_bytes());
        let notes: Vec<_> = out.into_iter().map(|r| r.expect("ok").notes).collect();
        assert_eq!(
            notes,
            vec![
                vec![SplitNote::LineBreakInStartTag {
                    breaks_exchangelib: true
                }],
                vec![SplitNote::LineBreakInStartTag {
                    breaks_exchangelib: false
                }],
                vec![SplitNote::LineBreakInStartTag {
                    breaks_exchangelib: true
                }],
                vec![],
            ]
        );
    }

    #[test]
    fn oversized_envelope_is_an_error_and_splitting_resumes() {
        let big = env("s", &"<a>x</a>".repeat(50));
        let small = env("", "");
        let stream = format!("{big}{small}");
        let mut s = EnvelopeSplitter::with_max_envelope(200);
        s.push(&big.as_bytes()[..150]);
        assert_eq!(s.next(), None);
        s.push(&big.as_bytes()[150..]);
        assert_eq!(
            s.next(),
            Some(Err(SplitError::TooLarge {
                offset: 0,
                limit: 200
            }))
        );
        assert_eq!(s.next(), None);
        s.push(small.as_bytes());
        assert_eq!(
            s.next().and_then(|r| r.ok()).map(|e| e.text),
            Some(small.clone())
        );
        // The same input in one piece gives the same result.
        let (out, _) = split_chunked(stream.as_bytes(), &[], 200);
        assert_eq!(out.len(), 2);
        assert!(out[0].is_err());
    }

    #[test]
    fn an_unending_envelope_does_not_grow_memory() {
        let mut s = EnvelopeSplitter::with_max_envelope(1024);
        s.push(b"<Envelope>");
        for _ in 0..1000 {
            s.push(&[b'x'; 1000]);
        }
        assert!(matches!(s.next(), Some(Err(SplitError::TooLarge { .. }))));
        let current = s.current.as_ref().expect("still inside");
        assert!(current.oversized);
        assert_eq!(current.buf.capacity(), 0);
        let partial = s.partial().expect("partial");
        assert_eq!(partial.len, 1_000_010);
        assert!(
            partial.evidence.contains("not kept"),
            "{}",
            partial.evidence
        );
    }

    #[test]
    fn invalid_utf8_names_the_byte_offset() {
        let mut bytes = b"  ".to_vec();
        bytes.extend_from_slice(b"<Envelope><Body>ab");
        bytes.push(0xFF);
        bytes.extend_from_slice(b"</Body></Envelope>");
        let (out, _) = split_all(&bytes);
        match &out[..] {
            [Err(SplitError::InvalidUtf8 { offset, bad_at, .. })] => {
                assert_eq!(*offset, 2);
                assert_eq!(*bad_at, 20);
            }
            other => panic!("expected InvalidUtf8, got {other:?}"),
        }
    }

    #[test]
    fn a_cut_off_envelope_is_reported_by_finish() {
        let e = env("s", "<a/>");
        let stream = format!("{e}\n{}", &e[..30]);
        let (out, tail) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![e.as_str()]);
        let inc = tail.incomplete.expect("incomplete");
        assert_eq!(inc.offset, e.len() as u64 + 1);
        assert_eq!(inc.len, 30);
        assert_eq!(inc.evidence, &e[..30]);
        // A tag cut before its name is known is incomplete too.
        let (_, tail) = split_all(b"<s:Enve");
        assert_eq!(tail.incomplete.map(|i| i.evidence), Some("<s:Enve".into()));
    }

    #[test]
    fn byte_order_mark_and_trailing_declaration() {
        let e = env("", "");
        let mut bytes = BOM.to_vec();
        bytes.extend_from_slice(e.as_bytes());
        bytes.extend_from_slice(b"<?xml version=\"1.0\"?>");
        let (out, tail) = split_all(&bytes);
        let got = out[0].as_ref().expect("ok");
        assert_eq!(got.text, e);
        assert_eq!(got.offset, 3);
        assert_eq!(got.notes, vec![SplitNote::ByteOrderMark]);
        assert_eq!(
            tail.notes,
            vec![SplitNote::DeclarationWithoutEnvelope { count: 1 }]
        );
        // A broken mark is junk.
        let (out, _) = split_all(&[
            0xEF, 0xBB, b'<', b'E', b'n', b'v', b'e', b'l', b'o', b'p', b'e', b'/', b'>',
        ]);
        let got = out[0].as_ref().expect("ok");
        assert!(
            matches!(
                &got.notes[..],
                [SplitNote::Junk {
                    offset: 0,
                    len: 2,
                    ..
                }]
            ),
            "{:?}",
            got.notes
        );
    }

    #[test]
    fn a_doctype_subset_does_not_open_an_envelope() {
        let e = env("", "");
        let doctype = "<!DOCTYPE x [ <!ELEMENT a ANY> <Envelope> ]>";
        let stream = format!("{doctype}{e}");
        let (out, tail) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![e.as_str()]);
        let notes = &out[0].as_ref().expect("ok").notes;
        assert_eq!(
            notes,
            &vec![SplitNote::Junk {
                offset: 0,
                len: doctype.len() as u64,
                sample: doctype.into()
            }]
        );
        assert_eq!(tail, Tail::default());
    }

    #[test]
    fn comments_between_envelopes_are_not_junk() {
        let e = env("", "");
        let stream = format!("<!-- hello <Envelope> -->{e}");
        let (out, _) = split_all(stream.as_bytes());
        assert_eq!(ok_texts(&out), vec![e.as_str()]);
        assert!(out[0].as_ref().expect("ok").notes.is_empty());
    }

    fn sample_stream() -> String {
        let d = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";
        format!(
            "{d}{}\r\n{d}{d}{}junk<x/><Envelope\n xmlns=\"{SOAP}\"><?xml version=\"1.0\"?></Envelope ><!--c-->{}\n{}",
            env(
                "",
                "<m:N xmlns:m=\"urn:m\" a=\"1>2\">t<![CDATA[]]>]]></m:N>"
            ),
            env("s", "<Envelope/>"),
            env("soap", "é ü"),
            env("", ""),
        )
    }

    #[test]
    fn splitting_at_every_byte_gives_the_same_result() {
        let s = sample_stream();
        let bytes = s.as_bytes();
        let whole = split_all(bytes);
        assert_eq!(whole.0.len(), 5);
        assert!(whole.0.iter().all(|r| r.is_ok()));
        for i in 0..=bytes.len() {
            assert_eq!(
                split_chunked(bytes, &[i], DEFAULT_MAX_ENVELOPE),
                whole,
                "cut at {i}"
            );
        }
        let every: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(split_chunked(bytes, &every, DEFAULT_MAX_ENVELOPE), whole);
    }

    fn envelope_strategy() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![Just(""), Just("s"), Just("soap"), Just("SOAP-ENV")];
        let body = prop::collection::vec(
            prop_oneof![
                Just("<a/>".to_string()),
                Just("<t:Envelope xmlns:t=\"urn:t\">x</t:Envelope>".to_string()),
                Just("<!-- a > b -- </Envelope> -->".to_string()),
                Just("<![CDATA[a > b ]] </Envelope>]]>".to_string()),
                Just("<?pi a > b </Envelope> ?>".to_string()),
                Just("<b c=\"/>\" d='>'>text &amp; more</b>".to_string()),
                "[a-z é]{0,12}",
            ],
            0..5,
        );
        (prefix, body).prop_map(|(p, parts)| env(p, &parts.concat()))
    }

    fn separator_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("\r\n".to_string()),
            Just("<?xml version=\"1.0\"?>".to_string()),
            Just("  <?xml version=\"1.0\"?>\n<?xml version=\"1.0\"?>".to_string()),
            Just("<!-- gap -->".to_string()),
            Just(" junk ".to_string()),
        ]
    }

    proptest! {
        #[test]
        fn valid_streams_split_the_same_under_any_chunking(
            parts in prop::collection::vec((separator_strategy(), envelope_strategy()), 1..6),
            cuts in prop::collection::vec(0usize..4000, 0..12),
        ) {
            let stream: String = parts.iter().map(|(s, e)| format!("{s}{e}")).collect();
            let whole = split_all(stream.as_bytes());
            let expected: Vec<&str> = parts.iter().map(|(_, e)| e.as_str()).collect();
            prop_assert_eq!(ok_texts(&whole.0), expected);
            prop_assert_eq!(&whole.1.incomplete, &None);
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert_eq!(split_chunked(stream.as_bytes(), &cuts, DEFAULT_MAX_ENVELOPE), whole);
        }

        #[test]
        fn random_bytes_never_panic_and_ignore_chunking(
            bytes in prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'<'), Just(b'>'), Just(b'/'), Just(b'"'), Just(b'!'), Just(b'?'), Just(b'-'),
                ],
                0..600,
            ),
            cuts in prop::collection::vec(0usize..600, 0..8),
            max in 1usize..200,
        ) {
            let mut cuts = cuts;
            cuts.sort_unstable();
            let whole = split_chunked(&bytes, &[], max);
            prop_assert_eq!(split_chunked(&bytes, &cuts, max), whole);
        }

        #[test]
        fn junk_before_an_envelope_is_reported_and_never_hides_it(
            pieces in prop::collection::vec(
                prop_oneof![
                    "[a-z >/!?\"'=&;-]{1,10}",
                    Just("<x y=\"1>\"/>".to_string()),
                    Just("</z>".to_string()),
                    Just("<?pi x?>".to_string()),
                    Just("<![CDATA[<Envelope>]]>".to_string()),
                ],
                1..6,
            ),
            e in envelope_strategy(),
        ) {
            let junk = format!("#{}", pieces.concat());
            let stream = format!("{junk}{e}");
            let (out, tail) = split_all(stream.as_bytes());
            prop_assert_eq!(ok_texts(&out), vec![e.as_str()]);
            let got = out[0].as_ref().expect("ok");
            prop_assert!(
                matches!(&got.notes[..], [SplitNote::Junk { offset: 0, .. }]),
                "{:?}", got.notes
            );
            prop_assert_eq!(tail, Tail::default());
        }

        #[test]
        fn buffers_stay_bounded_whatever_the_input(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'<'), Just(b'E'), Just(b'>'), Just(b'"')],
                0..3000,
            ),
            max in 1usize..300,
        ) {
            let mut s = EnvelopeSplitter::with_max_envelope(max);
            let mut prefix = b"<Envelope>".to_vec();
            prefix.extend_from_slice(&bytes);
            for chunk in prefix.chunks(7) {
                s.push(chunk);
                if let Some(c) = &s.current {
                    prop_assert!(c.buf.len() <= max);
                }
                prop_assert!(s.markup.len() <= MARKUP_CAP);
                prop_assert!(s.name.len() <= NAME_CAP && s.pi_target.len() <= NAME_CAP);
                prop_assert!(s.bang.len() <= 7);
                prop_assert!(s.junk.as_ref().is_none_or(|j| j.sample.len() <= JUNK_SAMPLE_CAP));
                for e in s.by_ref().flatten() {
                    prop_assert!(e.text.len() <= max);
                }
            }
        }
    }
}

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
mod tests;

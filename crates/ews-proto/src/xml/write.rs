use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// A thin, infallible writer for building SOAP documents.
///
/// It writes into memory, where quick-xml's `io::Result` can never be an
/// error, so the methods do not return one.
pub struct XmlWriter {
    inner: Writer<Vec<u8>>,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> Self {
        Self {
            inner: Writer::new(Vec::with_capacity(1024)),
        }
    }

    fn emit(&mut self, event: Event<'_>) {
        // Writing into a Vec cannot fail; the Result is only quick-xml's io signature.
        let _ = self.inner.write_event(event);
    }

    /// `<?xml version="1.0" encoding="utf-8"?>`
    pub fn declaration(&mut self) -> &mut Self {
        self.emit(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
        self
    }

    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute((*k, *v));
        }
        self.emit(Event::Start(start));
        self
    }

    pub fn end(&mut self, name: &str) -> &mut Self {
        self.emit(Event::End(BytesEnd::new(name)));
        self
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute((*k, *v));
        }
        self.emit(Event::Empty(start));
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.emit(Event::Text(BytesText::new(text)));
        self
    }

    /// `<name>text</name>`
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.start(name, &[]).text(text).end(name)
    }

    /// Writes `leaf` only when there is a value.
    pub fn leaf_opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(name, t);
        }
        self
    }

    /// Copies already-serialised XML verbatim (a caller-built fragment).
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.inner.get_mut().extend_from_slice(xml.as_bytes());
        self
    }

    pub fn into_string(self) -> String {
        // Only `&str` input and escaped text ever reach the buffer, so it is UTF-8.
        String::from_utf8(self.inner.into_inner())
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

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
    let e = format!("<Envelope xmlns=\"{SOAP}\"><Body><?xml version=\"1.0\"?></Body></Envelope>");
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

//! The fast path against the general path, on random objects (proptest):
//! whenever [`read`] takes an object, the general path (the decoder's
//! serde_json parse, [`parse`], and [`stamp_object`]) must take it too, to
//! the same request and the same body byte for byte; whenever the general
//! path refuses an object, [`read`] must refuse it as well (so every error
//! comes from the general path, the one place that words it).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Map, Value};

use super::{read, stamp_object};
use crate::protocol::codec::{decode, Decoder, Flat};
use crate::protocol::parse;

const MAX: usize = 64 * 1024;

/// Keys: the chat's own, the log's, extras, and a few the fast path
/// refuses (an escape in a key) or sorts oddly (empty, non-ASCII, upper
/// case before lower).
fn key() -> impl Strategy<Value = String> {
    let extra = prop::sample::select(vec![
        "from", "uid", "username", "time", "conv", "seq", "ts", "extra", "a", "Z", "zz", "", "é",
    ]);
    let own = prop::sample::select(vec![
        "msgId",
        "to",
        "gid",
        "cid",
        "msg",
        "m\\u0073g",
        "to\\n",
    ]);
    prop_oneof![3 => extra, 1 => own].prop_map(|k| format!("\"{k}\""))
}

/// One piece of string content, in raw JSON form: plain text, unicode,
/// every escape (those serde_json writes and those it does not), and
/// bytes that are not JSON.
fn string_piece() -> impl Strategy<Value = &'static str> {
    let plain = prop::sample::select(vec![
        "hi", "a b", "é", "😀", "\u{2028}", "\u{7f}", "\u{85}", "\u{200b}", "\\\"", "\\\\", "\\n",
        "\\t", "\\r", "\\b", "\\f", "9", "", "}", "{", "\\\"}", "\\\\}",
    ]);
    let odd = prop::sample::select(vec![
        "\\/",
        "\\u00e9",
        "\\u0041",
        "\\ud83d\\ude00",
        "\\x",
        "\u{1}",
        "\\u001f",
    ]);
    prop_oneof![12 => plain, 1 => odd]
}

fn string() -> impl Strategy<Value = String> {
    prop::collection::vec(string_piece(), 0..5).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// Any value: strings, integers in and out of the fast path's form,
/// other numbers, literals, nested values, and broken ones.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => string(),
        3 => (1i64..1000).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        2 => prop::sample::select(vec![
            "9", "13", "0", "-0", "-1", "01", "9.0", "1e3", "1E3", "-0.0", "1e309", "99999999999999999999",
            "123456789012345678", "1234567890123456789", "true", "false", "null", "nul", "tru",
            "{}", "{\"a\":1}", "[1,2]", "[]", "\"9\"", "{\"msgId\":9}",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A field, now and then with whitespace around its parts.
fn field() -> impl Strategy<Value = String> {
    let ws = prop::sample::select(vec!["", "", "", " ", "\n", "\t ", "\r\n"]);
    (key(), value(), ws.clone(), ws).prop_map(|(k, v, a, b)| format!("{a}{k}{b}:{a}{v}{b}"))
}

/// The fields a chat or group chat needs, often valid, so that the fast
/// path is taken often, then extra random fields, shuffled.
fn object() -> impl Strategy<Value = String> {
    let chat = prop_oneof![
        Just(vec!["\"msgId\":9".to_owned(), "\"to\":2".to_owned()]),
        Just(vec!["\"msgId\":13".to_owned(), "\"gid\":4".to_owned()]),
        Just(vec![
            "\"msgId\":13".to_owned(),
            "\"gid\":4".to_owned(),
            "\"uid\":1".to_owned()
        ]),
        Just(vec![
            "\"msgId\":9".to_owned(),
            "\"to\":2".to_owned(),
            "\"from\":1".to_owned()
        ]),
        Just(vec![]),
    ];
    let msg = prop_oneof![
        3 => string().prop_map(|s| vec![format!("\"msg\":{s}")]),
        1 => Just(vec![]),
    ];
    let cid = prop_oneof![
        3 => Just(vec![]),
        1 => string().prop_map(|s| vec![format!("\"cid\":{s}")]),
    ];
    (chat, msg, cid, prop::collection::vec(field(), 0..5))
        .prop_flat_map(|(a, b, c, d)| {
            let all: Vec<String> = a.into_iter().chain(b).chain(c).chain(d).collect();
            Just(all).prop_shuffle()
        })
        .prop_map(|fields| format!("{{{}}}", fields.join(",")))
}

/// Broken variants of an object: truncated, a trailing comma, a byte
/// that is not UTF-8, an extra byte.
fn mangled() -> impl Strategy<Value = Vec<u8>> {
    (object(), 0..6usize, any::<prop::sample::Index>()).prop_map(|(o, how, at)| {
        let mut b = o.into_bytes();
        let i = at.index(b.len());
        match how {
            0 => b.truncate(i),
            1 => b.insert(b.len().saturating_sub(1), b','),
            2 => b.insert(i, 0xff),
            3 => b.insert(i, b'x'),
            4 => {
                b.remove(i);
            }
            _ => b.insert(i, b' '),
        }
        b
    })
}

/// The sender's name: needing escapes, unicode, or plain.
fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "bob",
        "a\"b",
        "back\\slash",
        "é😀",
        "tab\there",
        "\u{7f}x",
        "",
    ])
    .prop_map(str::to_owned)
}

/// Checks one input: the codec's split (scan, then parse) against
/// `decode`, then the fast path against the general path. Returns whether
/// the fast path took it.
fn check(bytes: &[u8], uid: i64, name: &str) -> Result<bool, TestCaseError> {
    let whole = decode(bytes, MAX);
    let frame = Decoder::new().next_frame(bytes, MAX);
    let split = frame
        .clone()
        .and_then(|f| f.map(|f| f.parse(bytes)).transpose());
    prop_assert_eq!(&whole, &split);
    let Ok(Some(frame)) = frame else {
        return Ok(false);
    };
    let Some(fast) = read(frame.bytes(bytes)) else {
        return Ok(false);
    };
    // Taken by the fast path: the general path must agree in everything.
    let obj: Map<String, Value> = match whole {
        Ok(Some((obj, _))) => obj,
        other => {
            return Err(TestCaseError::fail(format!(
                "fast took {bytes:?}, general: {other:?}"
            )))
        }
    };
    let request = parse(&obj).map_err(|e| TestCaseError::fail(format!("general refused: {e}")))?;
    prop_assert_eq!(fast.request(), &request);
    prop_assert_eq!(fast.to_object(), Some(obj.clone()));
    for field in ["from", "uid"] {
        prop_assert_eq!(
            fast.stamped(field, uid, name),
            stamp_object(obj.clone(), field, uid, name)
        );
    }
    Ok(true)
}

/// What a connection made of its input, message by message, as the
/// listener handles it: each frame's bytes and what took it (the fast
/// path's request, or the general path's object or error), then the
/// fatal error, if any.
#[derive(Debug, PartialEq)]
enum Seen {
    Fast(Vec<u8>, usize, crate::protocol::Request),
    General(Vec<u8>, usize, Result<Map<String, Value>, String>),
    Fatal(String),
    /// The decoder's [`Decoder::work`] when the input ran out or failed.
    Work(u64),
}

/// Feeds `stream` in the pieces `cuts` makes, to one decoder with the
/// size limit `max`, taking frames with [`Decoder::next_frame_or`]
/// (`flat`) or [`Decoder::next_frame`] and the chat fast path after it.
fn listen(
    stream: &[u8],
    cuts: &[usize],
    max: usize,
    flat: bool,
) -> Result<Vec<Seen>, TestCaseError> {
    let mut decoder = Decoder::new();
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (stream.len() + 1)).collect();
    bounds.push(stream.len());
    bounds.sort_unstable();
    let mut from = 0;
    for to in bounds {
        buf.extend_from_slice(&stream[from..to]);
        from = to;
        loop {
            let found = if flat {
                decoder.next_frame_or(&buf, max, read)
            } else {
                decoder
                    .next_frame(&buf, max)
                    .map(|f| f.map(|f| (f, Flat::NotTried)))
            };
            let (frame, flat) = match found {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    seen.push(Seen::Fatal(e.to_string()));
                    seen.push(Seen::Work(decoder.work()));
                    return Ok(seen);
                }
            };
            let bytes = frame.bytes(&buf).to_vec();
            let fast = match flat {
                Flat::Read(chat) => {
                    // Taken from the candidate: the frame's bytes read alike.
                    let again = read(&bytes).map(|c| c.request().clone());
                    prop_assert_eq!(again.as_ref(), Some(chat.request()));
                    again
                }
                Flat::Refused => {
                    prop_assert!(read(&bytes).is_none());
                    None
                }
                Flat::NotTried => read(&bytes).map(|c| c.request().clone()),
            };
            let consumed = match fast {
                Some(request) => {
                    seen.push(Seen::Fast(bytes, frame.consumed, request));
                    frame.consumed
                }
                None => match frame.parse(&buf) {
                    Ok((obj, consumed)) => {
                        seen.push(Seen::General(bytes, consumed, Ok(obj)));
                        consumed
                    }
                    Err(e) => {
                        let Some(skip) = e.skip() else {
                            seen.push(Seen::Fatal(e.to_string()));
                            seen.push(Seen::Work(decoder.work()));
                            return Ok(seen);
                        };
                        seen.push(Seen::General(bytes, skip, Err(e.to_string())));
                        skip
                    }
                },
            };
            buf.drain(..consumed);
        }
    }
    seen.push(Seen::Work(decoder.work()));
    Ok(seen)
}

/// Streams of chats, other objects (nested ones with a `}` in a string
/// among them), broken bytes and whitespace, concatenated.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => object().prop_map(String::into_bytes),
        1 => mangled(),
        1 => prop::sample::select(vec![
            r#"{"msgId":9,"to":2,"msg":"a}b"}"#,
            r#"{"msgId":9,"to":2,"msg":"}"}"#,
            r#"{"msgId":1,"x":{"a":"}"},"msg":"m"}"#,
            r#"{"msgId":9,"to":2,"msg":"n","n":1e309}"#,
            "{}",
            "{ }",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    // Now and then a long run, so that the limit on whitespace before a
    // message is reached with small limits.
    let ws = prop::sample::select(vec![
        "",
        "\n",
        "\n",
        " ",
        "\r\n",
        "\t",
        "        ",
        "\n                             ",
    ]);
    prop::collection::vec((piece, ws), 1..8).prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(p, w)| p.into_iter().chain(w.bytes()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// The shortcut past the scanner changes nothing a connection sees:
    /// the same frames, taken by the same path, the same errors and the
    /// same work counted, however the bytes are split into reads, also
    /// with size limits around a message's length (whitespace and
    /// objects at the limit's edge).
    #[test]
    fn the_flat_shortcut_sees_what_the_scanner_sees(
        s in stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
        max in prop_oneof![1 => Just(MAX), 2 => 1usize..120],
    ) {
        prop_assert_eq!(listen(&s, &cuts, max, true)?, listen(&s, &cuts, max, false)?);
    }

    #[test]
    fn fast_and_general_paths_agree(o in object(), uid in 1i64..i64::MAX, n in name()) {
        check(o.as_bytes(), uid, &n)?;
    }

    #[test]
    fn broken_objects_take_the_general_path(b in mangled(), n in name()) {
        check(&b, 7, &n)?;
    }
}

/// The generators reach the fast path often enough for the property to
/// mean something, and the plain forms of both chats take it.
#[test]
fn the_fast_path_is_taken() {
    let plain = [
        r#"{"msgId":9,"from":1,"to":2,"msg":"hi","username":"x","time":"t"}"#,
        r#"{"msgId":13,"uid":1,"gid":3,"msg":"hi \"there\"\n","cid":"c-1"}"#,
        "{ \"to\" : 2 ,\n\"msgId\":9, \"msg\":\"é😀\", \"seq\":5, \"conv\":\"x\", \"ts\":1 }",
        r#"{"msgId":9,"to":2,"msg":"a","msg":"b","extra":null,"n":-12,"t":true}"#,
    ];
    for text in plain {
        assert_eq!(check(text.as_bytes(), 5, "bob").ok(), Some(true), "{text}");
    }
    let general = [
        r#"{"msgId":9,"to":2,"msg":"\u00e9"}"#,
        r#"{"msgId":9,"to":2,"msg":"a","x":{"b":1}}"#,
        r#"{"msgId":9,"to":2,"msg":"a","x":1.5}"#,
        r#"{"msgId":9,"to":0,"msg":"a"}"#,
        r#"{"msgId":9,"to":2}"#,
        r#"{"msgId":1,"uid":2,"password":"p"}"#,
        r#"{"msgId":9,"to":2,"msg":"a","cid":""}"#,
    ];
    for text in general {
        assert_eq!(check(text.as_bytes(), 5, "bob").ok(), Some(false), "{text}");
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut taken = 0;
    for _ in 0..2000 {
        let o = object()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_default();
        taken += usize::from(check(o.as_bytes(), 3, "bob").unwrap_or(false));
    }
    assert!(taken > 200, "the fast path took only {taken} of 2000");
}

/// Which way the shortcut goes: a plain chat is read from its candidate
/// (and its trailing newline consumed with it), a chat with a `}` in its
/// text only after the scan, another flat request is refused once, and a
/// message split across reads waits for the scanner.
#[test]
fn the_flat_shortcut_is_taken_for_a_plain_chat() {
    let kind = |bytes: &[u8]| match Decoder::new().next_frame_or(bytes, MAX, read) {
        Ok(Some((frame, Flat::Read(_)))) => format!("read {}", frame.consumed),
        Ok(Some((frame, Flat::Refused))) => format!("refused {}", frame.consumed),
        Ok(Some((frame, Flat::NotTried))) => format!("scanned {}", frame.consumed),
        Ok(None) => "incomplete".to_owned(),
        Err(e) => format!("error {e}"),
    };
    let plain = "{\"msgId\":9,\"to\":2,\"msg\":\"hi\"}\n";
    assert_eq!(kind(format!(" {plain}{plain}").as_bytes()), "read 31");
    assert_eq!(kind(br#"{"msgId":9,"to":2,"msg":"a}b"}"#), "scanned 30");
    assert_eq!(
        kind(b"{\"msgId\":1,\"id\":2,\"password\":\"p\"}\n"),
        "refused 34"
    );
    assert_eq!(kind(br#"{"msgId":9,"to":2,"msg":"hi"#), "incomplete");
    // Half scanned already: the scanner goes on, the candidate is not tried.
    let mut decoder = Decoder::new();
    let (head, tail) = plain.split_at(10);
    assert!(matches!(
        decoder.next_frame_or(head.as_bytes(), MAX, read),
        Ok(None)
    ));
    let found = decoder.next_frame_or(plain.as_bytes(), MAX, read);
    assert!(matches!(found, Ok(Some((f, Flat::NotTried))) if f.consumed == plain.len()));
    assert!(!tail.is_empty());
    // The whitespace after a message counts toward the next one's limit,
    // taken by the shortcut as by the scanner: 40 bytes of it pass a limit
    // of 40, 41 do not.
    let chat = plain.trim_end();
    for (spaces, passes) in [(40, true), (41, false)] {
        let input = format!("{chat}{}{chat}", " ".repeat(spaces));
        for flat in [true, false] {
            let mut decoder = Decoder::new();
            let mut next = |bytes: &[u8]| {
                if flat {
                    decoder
                        .next_frame_or(bytes, 40, read)
                        .map(|f| f.map(|(f, _)| f.consumed))
                } else {
                    decoder.next_frame(bytes, 40).map(|f| f.map(|f| f.consumed))
                }
            };
            let first = next(input.as_bytes());
            assert_eq!(first, Ok(Some(chat.len() + spaces)), "flat {flat}");
            let second = next(
                input
                    .as_bytes()
                    .get(chat.len() + spaces..)
                    .unwrap_or_default(),
            );
            let expected = if passes {
                Ok(Some(chat.len()))
            } else {
                Err(crate::protocol::codec::DecodeError::TooLarge)
            };
            assert_eq!(second, expected, "{spaces} spaces, flat {flat}");
        }
    }
    // Too large: the candidate lies beyond `max_message`, the scanner says so.
    assert_eq!(
        Decoder::new()
            .next_frame_or(plain.as_bytes(), 10, read)
            .map(|f| f.is_some()),
        Err(crate::protocol::codec::DecodeError::TooLarge)
    );
}

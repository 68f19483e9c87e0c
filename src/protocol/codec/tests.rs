//! Tests of [`codec`](super): framing of concatenated JSON values.

use serde_json::{json, Map, Value};

use super::{decode, encode, encode_into, DecodeError, Decoder};
use crate::protocol::msg_id::{errno, ERROR_MSG};

const MAX: usize = 64 * 1024;

/// Decodes everything complete in `pending`, removing what was consumed, as
/// the server does with its input buffer.
fn drain(pending: &mut Vec<u8>, max: usize) -> Result<Vec<Map<String, Value>>, DecodeError> {
    let mut out = Vec::new();
    while let Some((obj, consumed)) = decode(pending, max)? {
        assert!(consumed > 0 && consumed <= pending.len());
        out.push(obj);
        pending.drain(..consumed);
    }
    Ok(out)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Three messages with escapes, multi-byte UTF-8 and nesting, in three
/// separator styles (none, newline, assorted whitespace).
fn sample() -> (Vec<u8>, Vec<Map<String, Value>>) {
    let values = vec![
        json!({"msgId": 1, "uid": 12, "password": "p\"w\\d"}),
        json!({"msgId": 9, "msg": "你好, world 😀 \u{1F680}", "to": 2, "n": [1.5, -2e3, null, true]}),
        json!({"msgId": 13, "msg": "tab\there \u{7f} \\u0041", "nested": {"a": {"b": []}}}),
    ];
    let mut bytes = Vec::new();
    bytes.extend_from_slice(values[0].to_string().as_bytes());
    bytes.extend_from_slice(values[1].to_string().as_bytes()); // no separator
    bytes.extend_from_slice(b"\n \r\n\t");
    // An escaped surrogate pair, split by the tests like everything else.
    let third = values[2]
        .to_string()
        .replace("\\\\u0041", "\\\\u0041\\ud83d\\ude00");
    bytes.extend_from_slice(third.as_bytes());
    bytes.push(b'\n');
    let mut expected: Vec<_> = values.into_iter().map(obj).collect();
    expected[2] = obj(serde_json::from_str(&third).unwrap());
    (bytes, expected)
}

#[test]
fn one_object_consumes_its_newline() {
    let r = decode(b"{\"msgId\":25}\n", MAX).unwrap().unwrap();
    assert_eq!(r.0, obj(json!({"msgId": 25})));
    assert_eq!(r.1, 13);
}

#[test]
fn concatenated_values_in_one_buffer() {
    let (mut bytes, expected) = sample();
    assert_eq!(drain(&mut bytes, MAX).unwrap(), expected);
    assert!(bytes.is_empty(), "trailing whitespace is consumed too");
}

#[test]
fn split_at_every_byte_position() {
    let (bytes, expected) = sample();
    for cut in 0..=bytes.len() {
        let mut pending = bytes[..cut].to_vec();
        let mut got = drain(&mut pending, MAX).unwrap();
        pending.extend_from_slice(&bytes[cut..]);
        got.extend(drain(&mut pending, MAX).unwrap());
        assert_eq!(got, expected, "split at byte {cut}");
        // Whitespace that arrives after its object waits for the next one.
        assert!(
            pending.iter().all(u8::is_ascii_whitespace),
            "split at byte {cut}"
        );
    }
}

#[test]
fn one_byte_at_a_time() {
    let (bytes, expected) = sample();
    let mut pending = Vec::new();
    let mut got = Vec::new();
    for &b in &bytes {
        pending.push(b);
        got.extend(drain(&mut pending, MAX).unwrap());
    }
    assert_eq!(got, expected);
}

#[test]
fn whitespace_alone_is_incomplete_and_bounded() {
    assert_eq!(decode(b"", MAX).unwrap(), None);
    assert_eq!(decode(b" \n\r\t", MAX).unwrap(), None);
    assert_eq!(decode(&[b'\n'; 16], 16).unwrap(), None);
    assert_eq!(decode(&[b'\n'; 17], 16), Err(DecodeError::TooLarge));
    // Whitespace does not count against the size of the value after it.
    let mut buf = vec![b' '; 16];
    buf.extend_from_slice(br#"{"a":"0123456"}"#); // 15 bytes
    assert_eq!(decode(&buf, 16).unwrap().unwrap().1, 31);
}

#[test]
fn leading_and_trailing_whitespace_is_consumed_with_the_value() {
    let buf = b"\r\n  {\"a\":1} \n\t{\"b\":2}";
    let (first, consumed) = decode(buf, MAX).unwrap().unwrap();
    assert_eq!(first, obj(json!({"a": 1})));
    assert_eq!(&buf[consumed..], b"{\"b\":2}");
}

#[test]
fn too_large_complete_and_incomplete() {
    let exact = br#"{"msg":"0123456789"}"#; // 20 bytes
    assert!(decode(exact, 20).unwrap().is_some());
    assert_eq!(decode(exact, 19), Err(DecodeError::TooLarge));
    // Incomplete: fine while within the limit, too large once past it.
    assert_eq!(decode(&exact[..19], 19).unwrap(), None);
    assert_eq!(decode(&exact[..19], 18), Err(DecodeError::TooLarge));
    // A huge message is refused without parsing all of it.
    let mut huge = br#"{"msg":""#.to_vec();
    huge.resize(10 * 1024 * 1024, b'x');
    assert_eq!(decode(&huge, MAX), Err(DecodeError::TooLarge));
}

#[test]
fn invalid_bytes() {
    for bad in [
        &b"hello"[..],
        b"\x00\x01",
        b"\xff{}",
        b"{\"a\":1,,}",
        b"{\"a\" 1}",
        b"{]",
        b"{\"a\":tru }",
        b"{\"a\":\"\xff\xfe\"}",
        b"{\"a\":\"\\ud800\"}",
        b"{\"a\":\"\\q\"}",
        b"{\"a\":01}",
    ] {
        match decode(bad, MAX) {
            Err(DecodeError::Invalid(why)) => assert!(!why.is_empty()),
            other => panic!(
                "{:?}: expected Invalid, got {other:?}",
                String::from_utf8_lossy(bad)
            ),
        }
    }
    // The object before garbage is still delivered; the garbage then fails.
    let (_, consumed) = decode(b"{}x", MAX).unwrap().unwrap();
    assert_eq!(consumed, 2);
    assert!(matches!(decode(b"x", MAX), Err(DecodeError::Invalid(_))));
}

#[test]
fn top_level_must_be_an_object() {
    for bad in ["[1,2]", "\"s\"", "12 ", "null", "true", " [", "-"] {
        match decode(bad.as_bytes(), MAX) {
            Err(DecodeError::Invalid(why)) => {
                assert!(why.contains("expected a JSON object"), "{why}")
            }
            other => panic!("{bad:?}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn utf8_text_round_trips() {
    let text = "Grüße, 世界! 😀👍🏽 \u{202e}rtl \u{0} nul";
    let v = json!({"msgId": 9, "msg": text});
    let bytes = encode(&v);
    let (m, consumed) = decode(&bytes, MAX).unwrap().unwrap();
    assert_eq!(consumed, bytes.len());
    assert_eq!(m["msg"], text);
    // Raw UTF-8 on the wire, not \u escapes (except for control characters).
    assert!(bytes.windows(4).any(|w| w == "😀".as_bytes()));
}

#[test]
fn encode_is_compact_with_one_newline() {
    let bytes = encode(&json!({"msgId": 26, "errno": 0, "list": [1, 2]}));
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.matches('\n').count(), 1);
    assert!(!text.contains(' '));
    let mut out = b"prefix".to_vec();
    encode_into(&json!({"a": 1}), &mut out);
    encode_into(&json!({"b": "x\ny"}), &mut out);
    assert_eq!(out, b"prefix{\"a\":1}\n{\"b\":\"x\\ny\"}\n");
}

#[test]
fn decode_errors_reply_and_close() {
    let r = DecodeError::TooLarge.reply();
    assert_eq!(r["msgId"], ERROR_MSG);
    assert_eq!(r["errno"], errno::TOO_LARGE);
    assert!(r["errmsg"].is_string());
    assert!(r.get("req").is_none());
    let r = DecodeError::Invalid("x".into()).reply();
    assert_eq!(r["errno"], errno::INVALID_JSON);
}

/// Feeds `pieces` one after the other into one buffer and one decoder, as
/// the server does with a connection, and returns every object, or the
/// first error.
fn feed(pieces: &[&[u8]], max: usize) -> (Result<Vec<Map<String, Value>>, DecodeError>, Decoder) {
    let mut decoder = Decoder::new();
    let mut pending = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            match decoder.decode(&pending, max) {
                Ok(Some((obj, consumed))) => {
                    out.push(obj);
                    pending.drain(..consumed);
                }
                Ok(None) => break,
                Err(e) => return (Err(e), decoder),
            }
        }
    }
    (Ok(out), decoder)
}

/// Inputs good and bad: whatever one read of them gives, any split into
/// two reads gives too, through one resumed decoder.
#[test]
fn a_resumed_decoder_gives_the_same_result_at_every_split() {
    let (sample, _) = sample();
    let mut deep = "{\"a\":".repeat(130);
    deep.push('1');
    deep.push_str(&"}".repeat(130));
    let inputs: Vec<Vec<u8>> = vec![
        sample,
        b"{\"a\":1,,}{}".to_vec(),
        b"{\"a\" 1}".to_vec(),
        b"{\"a\":[1,{\"b\":\"]}\\\"\"}]}  {".to_vec(),
        b"{\"a\":\"\xff\xfe\"}".to_vec(),
        b"{\"a\":\"\\ud800\"}".to_vec(),
        b"{\"a\":tru }".to_vec(),
        b"{\"a\":\"x\ny\"}".to_vec(),
        b"{\"a\":-1e309}{\"b\":1}".to_vec(),
        b"{]".to_vec(),
        b"  [1]".to_vec(),
        b"{\"a\":\"0123456789012345678901234567890\"}".to_vec(), // too large
        deep.into_bytes(),
    ];
    for input in &inputs {
        let whole = feed(&[input], 40).0;
        for cut in 0..=input.len() {
            let (head, tail) = input.split_at(cut);
            assert_eq!(
                feed(&[head, tail], 40).0,
                whole,
                "{:?} split at {cut}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

/// The work is linear in the bytes received, however they are split: a
/// 1 MiB message fed one byte per read is scanned once, then parsed once.
#[test]
fn one_byte_per_read_costs_linear_work() {
    let text = "x\\\"{}[] ".repeat(120_000);
    let message = json!({"msgId": 9, "to": 2, "msg": text, "deep": [[{"a": [1, 2]}]]});
    let mut bytes = message.to_string().into_bytes();
    bytes.push(b'\n');
    assert!(bytes.len() > 1 << 20);
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    let (got, decoder) = feed(&pieces, 2 << 20);
    assert_eq!(got.unwrap(), vec![obj(message)]);
    let n = bytes.len() as u64;
    assert!(
        decoder.work() <= 2 * n,
        "{} bytes of work for {n} bytes",
        decoder.work()
    );
    // One read does the same work.
    let (_, once) = feed(&[&bytes], 2 << 20);
    assert_eq!(once.work(), decoder.work());
}

/// Leading whitespace has one rule however the reads fall: more than
/// `max_message` bytes of it are too large whether or not the object after
/// it has arrived, and an error's text does not depend on how much
/// whitespace the previous message took with it.
#[test]
fn leading_whitespace_one_rule_for_every_split() {
    let mut buf = vec![b' '; 17];
    buf.extend_from_slice(b"{}");
    assert_eq!(decode(&buf, 16), Err(DecodeError::TooLarge));
    assert_eq!(decode(&buf[..17], 16), Err(DecodeError::TooLarge));
    assert_eq!(decode(&buf[1..], 16).unwrap().unwrap().1, 18);
    for input in [&b"{}  x"[..], b"{} \n\t[1]", &buf] {
        let whole = feed(&[input], 16).0;
        assert!(whole.is_err(), "{whole:?}");
        for cut in 0..=input.len() {
            let (head, tail) = input.split_at(cut);
            assert_eq!(feed(&[head, tail], 16).0, whole, "{input:?} split at {cut}");
        }
    }
}

/// Whitespace consumed after an object counts toward the limit of the
/// next, as if it had arrived later: `{}`, 20 spaces and `{}` are too large
/// for a limit of 16 in one read as in any two (found by fuzzing: in one
/// read the spaces went with the first object and passed).
#[test]
fn trailing_whitespace_counts_for_the_next_message_at_every_split() {
    let mut input = b"{}".to_vec();
    input.extend_from_slice(&[b' '; 20]);
    input.extend_from_slice(b"{}");
    let whole = feed(&[&input], 16).0;
    assert_eq!(whole, Err(DecodeError::TooLarge));
    for cut in 0..=input.len() {
        let (head, tail) = input.split_at(cut);
        assert_eq!(feed(&[head, tail], 16).0, whole, "split at {cut}");
    }
    // Within the limit, both objects arrive however the bytes fall.
    let ok = b"{}       \n        {}"; // 16 bytes between
    for cut in 0..=ok.len() {
        let (head, tail) = ok.split_at(cut);
        assert_eq!(
            feed(&[head, tail], 16).0.map(|v| v.len()),
            Ok(2),
            "split at {cut}"
        );
    }
    // A cleared buffer forgets it.
    let mut d = Decoder::new();
    assert!(d.decode(&input[..22], 16).unwrap().is_some());
    d.reset();
    assert!(d.decode(b"{}", 16).unwrap().is_some());
}

/// The request's path (codec, then parser) gives a number a double cannot
/// hold the same verdict as any other unusable number: errno 4, for this
/// request only. Before, `1e309` was "invalid JSON" (errno 11) and closed
/// the connection while `1e308` or `1e30` in the same field was errno 4.
#[test]
fn a_number_out_of_range_is_a_bad_field_wherever_it_is() {
    let errno_of = |to: &str| -> i64 {
        let text = format!(r#"{{"msgId":9,"to":{to},"msg":"hi"}}"#);
        match decode(text.as_bytes(), MAX) {
            Ok(Some((m, _))) => match crate::protocol::parse(&m) {
                Ok(_) => 0,
                Err(e) => e.errno,
            },
            Ok(None) => panic!("{text}: incomplete"),
            Err(e) => e.errno(),
        }
    };
    for to in [
        "1e308",
        "1e309",
        "-1e309",
        "123456789012345678901234567890",
        "1e-400",
        "2.5",
    ] {
        assert_eq!(errno_of(to), errno::BAD_REQUEST, "to: {to}");
    }
    assert_eq!(errno_of("2"), 0);
}

/// The message with the huge number is stepped over; the stream goes on
/// (through a split, too), and a real syntax error is still fatal.
#[test]
fn a_number_out_of_range_skips_one_message() {
    let input = b"{\"msgId\":25,\"x\":[1e309]} \n{\"msgId\":25}\n";
    let e = decode(input, MAX).unwrap_err();
    assert_eq!(e.skip(), Some(26));
    assert_eq!(e.reply()["errno"], errno::BAD_REQUEST);
    assert_eq!(e.reply()["msgId"], ERROR_MSG);
    let (next, consumed) = decode(&input[26..], MAX).unwrap().unwrap();
    assert_eq!((next, consumed), (obj(json!({"msgId": 25})), 13));
    // Not just a huge number: still invalid, still fatal.
    let e = decode(b"{\"x\":1e309,,}", MAX).unwrap_err();
    assert_eq!((e.errno(), e.skip()), (errno::INVALID_JSON, None));
    assert!(decode(b"{\"x\":\"1e309\"}", MAX).unwrap().is_some());
}

/// The scanner's nesting limit is serde_json's: the same depths pass.
#[test]
fn nesting_limit_is_serde_jsons() {
    for n in 120..=132 {
        let text = format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        let serde = serde_json::from_str::<Map<String, Value>>(&text).is_ok();
        let mut d = Decoder::new();
        let ours = d.decode(text.as_bytes(), MAX);
        assert_eq!(ours.is_ok(), serde, "depth {n}: {ours:?}");
        // Refused as soon as the bracket too many arrives.
        if !serde {
            let open = r#"{"a":"#.repeat(n);
            assert!(
                Decoder::new().decode(open.as_bytes(), MAX).is_err(),
                "depth {n}"
            );
        }
    }
}

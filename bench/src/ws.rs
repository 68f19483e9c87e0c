//! The client side of WebSocket (RFC 6455) for `--transport ws`: the
//! upgrade request, masked text frames out, the server's unmasked frames
//! in, cut back into the JSON stream the rest of the bench reads.
//!
//! The server's frames are never masked and its messages never fragmented
//! (one JSON object per text frame), but continuation frames are joined
//! anyway. Pings are answered; a close frame ends the stream. Requests are
//! sent right behind the upgrade request without waiting for the `101`:
//! chat-server reads them as frames once it has answered the upgrade.

/// The upgrade request for `host` (the address connected to).
pub fn upgrade_request(host: &str) -> Vec<u8> {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: Y2hhdC1iZW5jaC1rZXkxMg==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Appends a final, masked frame of `opcode` with `payload` to `out`;
/// `mask` is the caller's (any four bytes: the server only unmasks).
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// What the reader made of the bytes so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The JSON text of whole messages, each followed by `\n`.
    pub text: Vec<u8>,
    /// Ping payloads to answer with pongs.
    pub pings: Vec<Vec<u8>>,
    /// The server sent a close frame.
    pub closed: bool,
}

/// The incoming half of one connection.
#[derive(Debug, Default)]
pub struct Reader {
    /// The `101` response has been read.
    upgraded: bool,
    pending: Vec<u8>,
    /// The payload of a fragmented message so far.
    partial: Vec<u8>,
}

impl Reader {
    /// Feeds bytes read from the socket; appends what they complete.
    ///
    /// # Errors
    /// The upgrade was refused, or a frame is masked or oversized.
    pub fn feed(&mut self, bytes: &[u8], max: usize, out: &mut Decoded) -> Result<(), String> {
        self.pending.extend_from_slice(bytes);
        if !self.upgraded {
            let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                if self.pending.len() > 16 << 10 {
                    return Err("no end to the upgrade response".into());
                }
                return Ok(());
            };
            if !self.pending.starts_with(b"HTTP/1.1 101 ") {
                let head = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                return Err(format!("WebSocket upgrade refused: {head}"));
            }
            self.pending.drain(..end + 4);
            self.upgraded = true;
        }
        let mut at = 0;
        while let Some((fin, opcode, start, len)) = header(&self.pending[at..])? {
            if len > max {
                return Err(format!("a {len}-byte frame"));
            }
            let Some(payload) = self.pending.get(at + start..at + start + len) else {
                break;
            };
            match opcode {
                0x0..=0x2 => {
                    self.partial.extend_from_slice(payload);
                    if fin {
                        out.text.append(&mut self.partial);
                        out.text.push(b'\n');
                    }
                }
                0x8 => out.closed = true,
                0x9 => out.pings.push(payload.to_vec()),
                _ => {}
            }
            at += start + len;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

/// A frame header at the front of `b`: fin, opcode, header length and
/// payload length; `None` while incomplete.
fn header(b: &[u8]) -> Result<Option<(bool, u8, usize, usize)>, String> {
    let (Some(&first), Some(&second)) = (b.first(), b.get(1)) else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err("the server masked a frame".into());
    }
    let (start, len) = match second & 0x7f {
        126 => match b.get(2..4) {
            Some(l) => (4, usize::from(u16::from_be_bytes([l[0], l[1]]))),
            None => return Ok(None),
        },
        127 => match b.get(2..10) {
            Some(l) => {
                let mut n = [0u8; 8];
                n.copy_from_slice(l);
                (
                    10,
                    usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                )
            }
            None => return Ok(None),
        },
        n => (2, usize::from(n)),
    };
    Ok(Some((first & 0x80 != 0, first & 0x0f, start, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_as_lines() {
        let mut r = Reader::default();
        let mut out = Decoded::default();
        let mut bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[0x81, 2, b'{', b'}']);
        bytes.extend_from_slice(&[0x01, 1, b'[', 0x80, 1, b']']);
        bytes.extend_from_slice(&[0x89, 1, b'p', 0x81, 5, b'{']);
        for b in bytes {
            r.feed(&[b], 1 << 20, &mut out).unwrap();
        }
        assert_eq!(out.text, b"{}\n[]\n");
        assert_eq!(out.pings, vec![b"p".to_vec()]);
        assert!(r.feed(b"HTTP", 10, &mut Decoded::default()).is_ok());
    }

    #[test]
    fn masking_round_trips() {
        let mut out = Vec::new();
        encode_masked(&mut out, 0x1, &[b'a'; 300], [1, 2, 3, 4]);
        assert_eq!(&out[..4], &[0x81, 0x80 | 126, 1, 44]);
        let unmasked: Vec<u8> = out[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4])
            .collect();
        assert_eq!(unmasked, vec![b'a'; 300]);
    }
}

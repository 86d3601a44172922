//! Server-Sent Events framing: an incremental decoder for upstream streams and an
//! encoder for the gateway's own.
//!
//! The decoder follows the WHATWG event-stream rules the MCP SDKs rely on:
//! `\n`, `\r\n` and `\r` line ends, `:` comments, multi-line `data`, dispatch on a
//! blank line, a trailing event without a blank line is dropped at end of stream.
//! Every decoder has a cap on the size of one event: past it the decoder
//! stops and says so ([`Decoder::overflowed`]), so an upstream cannot make
//! the gateway buffer an endless event.

/// The cap of [`Decoder::new`]: the default `MAX_UPSTREAM_BYTES`.
pub(crate) const DEFAULT_EVENT_LIMIT: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// Incremental decoder: feed chunks, collect finished events.
#[derive(Debug)]
pub struct Decoder {
    line: Vec<u8>,
    pending: Event,
    has_data: bool,
    /// A chunk ended in `\r`; a `\n` at the start of the next chunk belongs to it.
    after_cr: bool,
    /// Largest event (its data plus the line being read), in bytes.
    limit: usize,
    overflow: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::with_limit(DEFAULT_EVENT_LIMIT)
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder that stops once one event grows past `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Decoder {
            line: Vec::new(),
            pending: Event::default(),
            has_data: false,
            after_cr: false,
            limit,
            overflow: false,
        }
    }

    /// Whether an event grew past the limit. The decoder then ignores the
    /// rest of the stream; the caller ends it with an error.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Feeds one chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        if self.overflow {
            return out;
        }
        for &b in chunk {
            if self.line.len() + self.pending.data.len() >= self.limit {
                self.overflow = true;
                self.line = Vec::new();
                self.pending = Event::default();
                return out;
            }
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.end_line(&mut out);
                    self.after_cr = true;
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.pending));
            } else {
                self.pending = Event::default();
            }
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let text = String::from_utf8_lossy(&line);
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.pending.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.pending.id = Some(value.to_string()),
            _ => {}
        }
    }
}

/// Encodes an event with its `id` and type kept (a stream the client may
/// resume with `Last-Event-ID`) and `data` in place of its own.
pub(crate) fn encode_event(event: &Event, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 48);
    if let Some(id) = &event.id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.replace(['\r', '\n'], "").as_bytes());
        out.push(b'\n');
    }
    if let Some(kind) = &event.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.replace(['\r', '\n'], "").as_bytes());
        out.push(b'\n');
    }
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Encodes one `message` event carrying a JSON-RPC message (no event id: the
/// gateway does not offer stream resumption). JSON text never needs
/// multi-line framing unless it was pretty-printed.
pub(crate) fn encode_message(json: &[u8]) -> Vec<u8> {
    let message = Event {
        event: Some("message".into()),
        data: String::new(),
        id: None,
    };
    encode_event(&message, json)
}

/// Encodes one `message` event under event id `id` (a stream position the
/// gateway keeps for itself, see `upstream/relay.rs`).
pub(crate) fn encode_with_id(id: &str, json: &[u8]) -> Vec<u8> {
    let message = Event {
        event: Some("message".into()),
        data: String::new(),
        id: Some(id.to_string()),
    };
    encode_event(&message, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_across_chunks() {
        let mut d = Decoder::new();
        assert!(d.feed(b"event: message\nid: 7\nda").is_empty());
        let ev = d.feed(b"ta: {\"a\":1}\n\n");
        assert_eq!(
            ev,
            vec![Event {
                event: Some("message".into()),
                data: "{\"a\":1}".into(),
                id: Some("7".into())
            }]
        );
    }

    #[test]
    fn handles_crlf_split_between_chunks_comments_and_multiline() {
        let mut d = Decoder::new();
        let mut ev = d.feed(b": keepalive\r");
        ev.extend(d.feed(b"\ndata: a\r\ndata: b\r"));
        ev.extend(d.feed(b"\n\r\n"));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "a\nb");
    }

    #[test]
    fn empty_data_events_are_dispatched_and_blank_blocks_are_not() {
        let mut d = Decoder::new();
        // A 2025-11-25 priming event: id and empty data.
        let ev = d.feed(b"id: 1\ndata:\n\n\n\n");
        assert_eq!(
            ev,
            vec![Event {
                event: None,
                data: String::new(),
                id: Some("1".into())
            }]
        );
    }

    #[test]
    fn an_event_past_the_limit_stops_the_decoder() {
        let mut d = Decoder::with_limit(64);
        let ok = d.feed(b"data: {}\n\n");
        assert_eq!(ok.len(), 1);
        assert!(d.feed(&[b'x'; 40]).is_empty());
        assert!(!d.overflowed(), "40 bytes are within the limit");
        assert!(d.feed(&[b'x'; 40]).is_empty());
        assert!(d.overflowed());
        assert!(d.feed(b"\n\ndata: late\n\n").is_empty(), "nothing after");
        // Many data lines of one event count together.
        let mut d = Decoder::with_limit(64);
        for _ in 0..10 {
            d.feed(b"data: 0123456789\n");
        }
        assert!(d.overflowed());
    }

    #[test]
    fn events_keep_their_id_and_type() {
        let event = Event {
            event: Some("message".into()),
            data: "old".into(),
            id: Some("42".into()),
        };
        let out = Decoder::new().feed(&encode_event(&event, b"{\"a\":\n1}"));
        assert_eq!(out[0].id.as_deref(), Some("42"));
        assert_eq!(out[0].event.as_deref(), Some("message"));
        assert_eq!(out[0].data, "{\"a\":\n1}");
    }

    #[test]
    fn encoder_round_trips() {
        let bytes = encode_message(b"{\"x\":\n2}");
        let ev = Decoder::new().feed(&bytes);
        assert_eq!(ev[0].data, "{\"x\":\n2}");
        assert_eq!(ev[0].event.as_deref(), Some("message"));
    }
}

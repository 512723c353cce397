//! A WebSocket client's receiving side read straight off its TCP stream, for load generators
//! that hold thousands of connections on the same cores as the server they measure.
//!
//! A general WebSocket client pays per message for what a viewer counting events does not
//! need (tungstenite zero-fills its free read buffer before every read, wraps each read in
//! waker proxies, copies the payload into a message of its own). This reader keeps one buffer
//! per connection, filled by plain reads and never cleared, and hands out each server frame as
//! a slice of it. The handshake and the messages a client sends stay with a real client; this
//! only takes over a connection once it is set up.

use std::io;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Bytes read at a time; a frame longer than this makes the buffer grow to hold it.
const READ_SIZE: usize = 4096;

/// The largest message accepted from the server, so a broken length cannot exhaust memory.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// One message from the server (a fragmented message comes whole).
#[derive(Debug, PartialEq, Eq)]
pub enum ServerMessage<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    /// A close frame: its code and reason, when it has them.
    Close(Option<(u16, String)>),
    /// A ping: answer with a pong carrying this payload.
    Ping(&'a [u8]),
    Pong,
}

/// Reads server frames from a connection's bytes.
pub struct FrameReader {
    buffer: Vec<u8>,
    /// Where the unread bytes start and end in `buffer`.
    start: usize,
    end: usize,
    /// A fragmented message being put together: its opcode and the payload so far.
    fragments: Option<(u8, Vec<u8>)>,
    /// A whole fragmented message, handed out by the last `next_message`.
    assembled: Vec<u8>,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader {
            buffer: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            fragments: None,
            assembled: Vec::new(),
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

impl FrameReader {
    /// Reads more bytes from `stream`; `Ok(0)` when the server closed it. Cancel-safe: a read
    /// that did not finish took nothing.
    pub async fn fill(&mut self, stream: &mut TcpStream) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buffer.len() - self.end < READ_SIZE / 2 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buffer.len() - self.end < READ_SIZE / 2 {
            self.buffer.resize(self.end + READ_SIZE, 0);
        }
        let read = stream.read(&mut self.buffer[self.end..]).await?;
        self.end += read;
        Ok(read)
    }

    /// The next whole message among the bytes read so far, `Ok(None)` when more must be read.
    pub fn next_message(&mut self) -> io::Result<Option<ServerMessage<'_>>> {
        loop {
            let Some((opcode, fin, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            match (opcode, &mut self.fragments) {
                // A control frame may arrive between the fragments of a message.
                (0x8..=0xF, _) => {}
                (0x0, Some((_, parts))) => {
                    parts.extend_from_slice(&self.buffer[payload.clone()]);
                    if parts.len() > MAX_MESSAGE {
                        return Err(invalid("message longer than the reader accepts"));
                    }
                    if !fin {
                        continue;
                    }
                    let (first, parts) = self.fragments.take().unwrap_or_default();
                    self.assembled = parts;
                    return message(first, &self.assembled).map(Some);
                }
                (0x0, None) => return Err(invalid("continuation frame without a message")),
                (_, Some(_)) => return Err(invalid("new message inside a fragmented one")),
                (_, None) if !fin => {
                    self.fragments = Some((opcode, self.buffer[payload].to_vec()));
                    continue;
                }
                (_, None) => {}
            }
            return message(opcode, &self.buffer[payload]).map(Some);
        }
    }

    /// The next frame's opcode, FIN bit and where its payload lies in `buffer`.
    fn next_frame(&mut self) -> io::Result<Option<(u8, bool, std::ops::Range<usize>)>> {
        let bytes = &self.buffer[self.start..self.end];
        let [first, second, ..] = *bytes else {
            return Ok(None);
        };
        if second & 0x80 != 0 {
            return Err(invalid("a server must not mask its frames"));
        }
        let (header, length) = match second & 0x7F {
            126 => match bytes.get(2..4) {
                Some(b) => (4, u64::from(u16::from_be_bytes([b[0], b[1]]))),
                None => return Ok(None),
            },
            127 => match bytes.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(b) => (10, u64::from_be_bytes(b)),
                None => return Ok(None),
            },
            short => (2, u64::from(short)),
        };
        let length = usize::try_from(length)
            .ok()
            .filter(|l| *l <= MAX_MESSAGE)
            .ok_or_else(|| invalid("frame longer than the reader accepts"))?;
        if bytes.len() < header + length {
            if self.buffer.len() < header + length {
                // Room for the whole frame at the start of the buffer, where `fill` moves it.
                self.buffer.resize(header + length + READ_SIZE, 0);
            }
            return Ok(None);
        }
        let payload = self.start + header..self.start + header + length;
        self.start = payload.end;
        Ok(Some((first & 0x0F, first & 0x80 != 0, payload)))
    }
}

fn message(opcode: u8, payload: &[u8]) -> io::Result<ServerMessage<'_>> {
    match opcode {
        0x1 => std::str::from_utf8(payload)
            .map(ServerMessage::Text)
            .map_err(|_| invalid("text message that is not UTF-8")),
        0x2 => Ok(ServerMessage::Binary(payload)),
        0x8 => Ok(ServerMessage::Close(match payload {
            [high, low, reason @ ..] => Some((
                u16::from_be_bytes([*high, *low]),
                String::from_utf8_lossy(reason).into_owned(),
            )),
            _ => None,
        })),
        0x9 => Ok(ServerMessage::Ping(payload)),
        0xA => Ok(ServerMessage::Pong),
        _ => Err(invalid("unknown opcode")),
    }
}

/// A client frame (clients must mask theirs) with one message: `opcode` 0x1 text, 0x8 close,
/// 0xA pong.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    // Any key will do for a server; it only must not be left out.
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        short @ 0..=125 => frame.push(0x80 | short as u8),
        medium @ 126..=0xFFFF => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![first];
        match payload.len() {
            short @ 0..=125 => frame.push(short as u8),
            medium @ 126..=0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                frame.push(127);
                frame.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    fn reader_with(bytes: &[u8]) -> FrameReader {
        let mut reader = FrameReader::default();
        reader.buffer.resize(bytes.len().max(READ_SIZE), 0);
        reader.buffer[..bytes.len()].copy_from_slice(bytes);
        reader.end = bytes.len();
        reader
    }

    #[test]
    fn reads_frames_of_every_length_class() {
        let long = "x".repeat(70_000);
        let medium = "y".repeat(300);
        let mut bytes = server_frame(0x81, b"short");
        bytes.extend(server_frame(0x81, medium.as_bytes()));
        bytes.extend(server_frame(0x81, long.as_bytes()));
        let mut reader = reader_with(&bytes);
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Text("short"))
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Text(medium.as_str()))
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Text(long.as_str()))
        );
        assert_eq!(reader.next_message().unwrap(), None);
    }

    #[test]
    fn waits_for_the_rest_of_a_frame() {
        let bytes = server_frame(0x81, b"{\"type\":\"next\"}");
        let mut reader = reader_with(&bytes[..5]);
        assert_eq!(reader.next_message().unwrap(), None);
        reader.buffer[5..bytes.len()].copy_from_slice(&bytes[5..]);
        reader.end = bytes.len();
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Text("{\"type\":\"next\"}"))
        );
    }

    #[test]
    fn puts_fragments_together_around_a_ping() {
        let mut bytes = server_frame(0x01, b"he");
        bytes.extend(server_frame(0x89, b"p"));
        bytes.extend(server_frame(0x00, b"ll"));
        bytes.extend(server_frame(0x80, b"o"));
        bytes.extend(server_frame(0x88, &[0x03, 0xF5, b'b', b'y', b'e']));
        let mut reader = reader_with(&bytes);
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Ping(b"p"))
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Text("hello"))
        );
        assert_eq!(
            reader.next_message().unwrap(),
            Some(ServerMessage::Close(Some((1013, "bye".to_owned()))))
        );
    }

    #[test]
    fn refuses_masked_and_oversized_frames() {
        assert!(
            reader_with(&[0x81, 0x85, 1, 2, 3, 4, 0])
                .next_message()
                .is_err()
        );
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(reader_with(&huge).next_message().is_err());
    }

    #[test]
    fn masks_client_frames() {
        let frame = client_frame(0x1, b"{}");
        assert_eq!(frame[0], 0x81);
        assert_eq!(frame[1], 0x82);
        let mask = &frame[2..6];
        let unmasked: Vec<u8> = frame[6..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(unmasked, b"{}");
    }
}

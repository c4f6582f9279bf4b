//! Command frames: READY with its metadata, ERROR, PING and PONG.

use bytes::{BufMut, Bytes, BytesMut};

use super::{ZmtpError, FLAG_COMMAND, FLAG_LONG};

/// A READY's properties, names as sent (compared without case).
pub type Metadata = Vec<(String, Bytes)>;

/// A command the connection understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ready(Metadata),
    Error(String),
    Ping { ttl: u16, context: Bytes },
    Pong { context: Bytes },
}

/// The most context a PING may carry (RFC 37).
const MAX_PING_CONTEXT: usize = 16;

impl Command {
    /// Decodes a command frame's body: a name (length-prefixed) then its data.
    pub fn decode(body: &Bytes) -> Result<Command, ZmtpError> {
        let (&name_len, rest) = body
            .split_first()
            .ok_or(ZmtpError::Malformed("empty command"))?;
        let name_len = usize::from(name_len);
        if rest.len() < name_len {
            return Err(ZmtpError::Malformed("command name past the frame"));
        }
        let name = &rest[..name_len];
        let data = body.slice(1 + name_len..);
        match name {
            b"READY" => decode_metadata(&data).map(Command::Ready),
            b"ERROR" => {
                let (&len, reason) = data
                    .split_first()
                    .ok_or(ZmtpError::Malformed("ERROR without a reason"))?;
                let reason = reason
                    .get(..usize::from(len))
                    .ok_or(ZmtpError::Malformed("ERROR reason past the frame"))?;
                Ok(Command::Error(String::from_utf8_lossy(reason).into_owned()))
            }
            b"PING" => {
                if data.len() < 2 || data.len() - 2 > MAX_PING_CONTEXT {
                    return Err(ZmtpError::Malformed("PING of a wrong size"));
                }
                Ok(Command::Ping {
                    ttl: u16::from_be_bytes([data[0], data[1]]),
                    context: data.slice(2..),
                })
            }
            b"PONG" => {
                if data.len() > MAX_PING_CONTEXT {
                    return Err(ZmtpError::Malformed("PONG of a wrong size"));
                }
                Ok(Command::Pong { context: data })
            }
            other => Err(ZmtpError::UnknownCommand(
                String::from_utf8_lossy(other).into_owned(),
            )),
        }
    }

    /// The command's name and data, for [`encode_command`].
    fn body(&self) -> (&'static [u8], Vec<u8>) {
        match self {
            Command::Ready(metadata) => {
                let mut data = Vec::new();
                for (name, value) in metadata {
                    // Names are at most 255 bytes (they come from us).
                    data.push(name.len() as u8);
                    data.extend_from_slice(name.as_bytes());
                    data.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    data.extend_from_slice(value);
                }
                (b"READY", data)
            }
            Command::Error(reason) => {
                let reason = &reason.as_bytes()[..reason.len().min(255)];
                let mut data = vec![reason.len() as u8];
                data.extend_from_slice(reason);
                (b"ERROR", data)
            }
            Command::Ping { ttl, context } => {
                let mut data = ttl.to_be_bytes().to_vec();
                data.extend_from_slice(context);
                (b"PING", data)
            }
            Command::Pong { context } => (b"PONG", context.to_vec()),
        }
    }
}

/// Appends `command` as a command frame to `out`.
pub fn encode_command(command: &Command, out: &mut BytesMut) {
    let (name, data) = command.body();
    let size = 1 + name.len() + data.len();
    if size > 255 {
        out.put_u8(FLAG_COMMAND | FLAG_LONG);
        out.put_u64(size as u64);
    } else {
        out.put_u8(FLAG_COMMAND);
        out.put_u8(size as u8);
    }
    out.put_u8(name.len() as u8);
    out.put_slice(name);
    out.put_slice(&data);
}

/// READY's properties: `name-size name value-size(u32) value`, to the end of the frame.
fn decode_metadata(mut data: &[u8]) -> Result<Metadata, ZmtpError> {
    let mut properties = Vec::new();
    let whole = Bytes::copy_from_slice(data);
    let mut at = 0;
    while let Some((&name_len, rest)) = data.split_first() {
        let name_len = usize::from(name_len);
        if name_len == 0 {
            return Err(ZmtpError::Malformed("empty property name"));
        }
        let name = rest
            .get(..name_len)
            .ok_or(ZmtpError::Malformed("property name past the frame"))?;
        if !name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(b))
        {
            return Err(ZmtpError::Malformed("property name with a bad character"));
        }
        let rest = &rest[name_len..];
        let size: [u8; 4] = rest
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .ok_or(ZmtpError::Malformed("property size past the frame"))?;
        let size = u32::from_be_bytes(size) as usize;
        let rest = &rest[4..];
        if rest.len() < size {
            return Err(ZmtpError::Malformed("property value past the frame"));
        }
        let value_at = at + 1 + name_len + 4;
        properties.push((
            String::from_utf8_lossy(name).into_owned(),
            whole.slice(value_at..value_at + size),
        ));
        at = value_at + size;
        data = &rest[size..];
    }
    Ok(properties)
}

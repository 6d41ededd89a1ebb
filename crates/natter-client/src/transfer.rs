//! File transfer as the web client does it (`web/transfer.js`): one
//! ordered data channel per file and recipient, labelled `file:<id>`.
//! The sender sends a JSON header (name, size, type, SHA-256 of the
//! whole file), then the bytes in 16 KiB binary messages, pausing while
//! the channel's buffer is above a high-water mark. The recipient hashes
//! what it received and answers `{"type":"result","ok","sha256"}`; the
//! sender then closes the channel.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

/// Bytes per data channel message: small enough for every SCTP stack.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Stop queueing above this many buffered bytes ...
pub const HIGH_WATER: usize = 1024 * 1024;
/// ... and resume once the buffer has drained to this.
pub const LOW_WATER: usize = 256 * 1024;
/// Largest file a recipient accepts; it is held in memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;
/// The label of a file channel starts with this.
pub const LABEL_PREFIX: &str = "file:";

/// The first message on a file channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileHeader {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    pub size: u64,
    #[serde(default = "default_mime")]
    pub mime: String,
    pub sha256: String,
    #[serde(default = "default_chunk")]
    pub chunk_bytes: usize,
}

fn default_mime() -> String {
    "application/octet-stream".to_owned()
}

fn default_chunk() -> usize {
    CHUNK_BYTES
}

impl FileHeader {
    /// The header of `data`, sent as `name` in transfer `id`.
    pub fn new(id: &str, name: &str, mime: &str, data: &[u8]) -> Self {
        FileHeader {
            kind: "file".to_owned(),
            id: id.to_owned(),
            name: name.to_owned(),
            size: data.len() as u64,
            mime: mime.to_owned(),
            sha256: sha256_hex(data),
            chunk_bytes: CHUNK_BYTES,
        }
    }

    pub fn to_json(&self) -> String {
        // Strings and numbers only: serializing cannot fail.
        serde_json::to_string(self).expect("file headers serialize")
    }
}

/// The recipient's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    #[serde(rename = "type")]
    pub kind: String,
    pub ok: bool,
    #[serde(default)]
    pub sha256: String,
}

impl FileResult {
    pub fn new(ok: bool, sha256: &str) -> Self {
        FileResult {
            kind: "result".to_owned(),
            ok,
            sha256: sha256.to_owned(),
        }
    }

    pub fn to_json(&self) -> String {
        // A string and a boolean: serializing cannot fail.
        serde_json::to_string(self).expect("file results serialize")
    }

    /// The result in a message on a file channel, if it is one.
    pub fn parse(data: &[u8], is_text: bool) -> Option<FileResult> {
        let result: FileResult = serde_json::from_slice(data).ok().filter(|_| is_text)?;
        (result.kind == "result").then_some(result)
    }
}

/// SHA-256 as lowercase hex, as the web client compares it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random transfer id shaped like the web client's `crypto.randomUUID()`.
pub fn transfer_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = hex(&b);
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        8 | (b[8] & 3),
        &h[17..20],
        &h[20..32]
    )
}

/// Why an incoming transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("bad file header: {0}")]
    BadHeader(String),
    #[error("more than the announced {0} bytes")]
    TooLong(u64),
    #[error("the sender went away after {received} of {size} bytes")]
    Incomplete { received: u64, size: u64 },
}

/// What a message on an incoming file channel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The header arrived.
    Started,
    /// Bytes so far.
    Received(u64),
    /// Every byte arrived; `verified` when its SHA-256 is the header's.
    /// Send `result` back to the sender.
    Complete { verified: bool, result: FileResult },
    /// Not for us (a message after completion, text among the bytes).
    Ignored,
}

/// One file being received on its channel.
#[derive(Debug, Default)]
pub struct IncomingFile {
    header: Option<FileHeader>,
    data: Vec<u8>,
    complete: bool,
}

impl IncomingFile {
    pub fn new() -> Self {
        IncomingFile::default()
    }

    /// The header, once it arrived.
    pub fn header(&self) -> Option<&FileHeader> {
        self.header.as_ref()
    }

    /// The bytes received so far (all of them once complete).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The file's name without any directory part, safe to save under.
    pub fn safe_name(&self) -> String {
        let name = self.header.as_ref().map_or("file", |h| h.name.as_str());
        safe_file_name(name)
    }

    /// One message from the channel.
    pub fn handle_message(&mut self, data: &[u8], is_text: bool) -> Result<Progress, TransferError> {
        let Some(header) = &self.header else {
            let header: FileHeader =
                serde_json::from_slice(data).map_err(|e| TransferError::BadHeader(e.to_string()))?;
            if header.kind != "file" {
                return Err(TransferError::BadHeader(format!("type {:?}", header.kind)));
            }
            if header.size > MAX_FILE_BYTES {
                return Err(TransferError::BadHeader(format!(
                    "{} bytes is over the limit of {MAX_FILE_BYTES}",
                    header.size
                )));
            }
            let empty = header.size == 0;
            self.header = Some(header);
            return Ok(if empty { self.finish() } else { Progress::Started });
        };
        if is_text || self.complete {
            return Ok(Progress::Ignored);
        }
        let size = header.size;
        if self.data.len() as u64 + data.len() as u64 > size {
            return Err(TransferError::TooLong(size));
        }
        self.data.extend_from_slice(data);
        if self.data.len() as u64 == size {
            return Ok(self.finish());
        }
        Ok(Progress::Received(self.data.len() as u64))
    }

    /// The channel closed: an error unless every byte had arrived.
    pub fn handle_close(&self) -> Result<(), TransferError> {
        match &self.header {
            Some(h) if !self.complete => Err(TransferError::Incomplete {
                received: self.data.len() as u64,
                size: h.size,
            }),
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> Progress {
        self.complete = true;
        let sha256 = sha256_hex(&self.data);
        // finish() runs only once the header is in.
        let expected = self
            .header
            .as_ref()
            .map(|h| h.sha256.to_ascii_lowercase())
            .unwrap_or_default();
        let verified = sha256 == expected;
        Progress::Complete {
            verified,
            result: FileResult::new(verified, &sha256),
        }
    }
}

/// `name` without directories, control characters or a leading dot.
pub fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(data: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let header = FileHeader::new(&transfer_id(), "a.bin", "application/octet-stream", data);
        let mut messages = vec![(header.to_json().into_bytes(), true)];
        messages.extend(data.chunks(CHUNK_BYTES).map(|c| (c.to_vec(), false)));
        messages
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn receives_and_verifies() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut incoming = IncomingFile::new();
        let mut last = None;
        for (message, text) in send(&data) {
            last = Some(incoming.handle_message(&message, text).unwrap());
        }
        let Some(Progress::Complete { verified, result }) = last else {
            panic!("{last:?}")
        };
        assert!(verified && result.ok);
        assert_eq!(result.sha256, sha256_hex(&data));
        assert_eq!(incoming.data(), &data[..]);
        assert_eq!(incoming.handle_close(), Ok(()));
    }

    #[test]
    fn empty_file_completes_on_header() {
        let mut incoming = IncomingFile::new();
        let header = FileHeader::new("x", "e", "text/plain", b"");
        assert!(matches!(
            incoming.handle_message(header.to_json().as_bytes(), true),
            Ok(Progress::Complete { verified: true, .. })
        ));
    }

    #[test]
    fn mismatch_detected() {
        let data = vec![1u8; 40_000];
        let mut messages = send(&data);
        messages[2].0[5] ^= 1;
        let mut incoming = IncomingFile::new();
        let last = messages
            .iter()
            .map(|(m, t)| incoming.handle_message(m, *t).unwrap())
            .last();
        assert!(matches!(last, Some(Progress::Complete { verified: false, result }) if !result.ok));
    }

    #[test]
    fn hostile_input() {
        let mut incoming = IncomingFile::new();
        assert!(matches!(
            incoming.handle_message(b"nope", true),
            Err(TransferError::BadHeader(_))
        ));
        let big = format!(
            r#"{{"type":"file","id":"x","name":"n","size":{},"sha256":"00"}}"#,
            MAX_FILE_BYTES + 1
        );
        assert!(matches!(
            incoming.handle_message(big.as_bytes(), true),
            Err(TransferError::BadHeader(_))
        ));
        let mut incoming = IncomingFile::new();
        let header = FileHeader::new("x", "n", "m", &[0; 10]);
        incoming.handle_message(header.to_json().as_bytes(), true).unwrap();
        assert_eq!(incoming.handle_message(&[0; 4], false), Ok(Progress::Received(4)));
        assert_eq!(
            incoming.handle_close(),
            Err(TransferError::Incomplete { received: 4, size: 10 })
        );
        assert_eq!(incoming.handle_message(&[0; 7], false), Err(TransferError::TooLong(10)));
    }

    #[test]
    fn web_client_header_parses() {
        let text = r#"{"type":"file","id":"6c1c","name":"report.pdf","size":3,"mime":"application/pdf","sha256":"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD","chunkBytes":16384}"#;
        let mut incoming = IncomingFile::new();
        incoming.handle_message(text.as_bytes(), true).unwrap();
        assert!(matches!(
            incoming.handle_message(b"abc", false),
            Ok(Progress::Complete { verified: true, .. })
        ));
        assert_eq!(
            FileResult::parse(br#"{"type":"result","ok":true,"sha256":"ab"}"#, true),
            Some(FileResult::new(true, "ab"))
        );
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x\\y.txt"), "y.txt");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("a\u{7}b"), "ab");
    }

    #[test]
    fn ids_look_like_uuids() {
        let id = transfer_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
    }
}

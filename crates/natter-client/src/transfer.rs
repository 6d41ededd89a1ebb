//! File transfer as the web client does it (`web/transfer.js`): one
//! ordered data channel per file and recipient, labelled `file:<id>`.
//! The sender sends a JSON header (name, size, type, SHA-256 of the
//! whole file), then the bytes in 16 KiB binary messages, pausing while
//! the channel's buffer is above a high-water mark. The recipient hashes
//! what it received and answers `{"type":"result","ok","sha256"}`; the
//! sender then closes the channel.
//!
//! A resumed transfer (natter's own, the web client never sends one)
//! announces `offset` in its header: the bytes that follow start there,
//! while `size` and `sha256` stay the whole file's. The recipient hashed
//! the bytes it had kept ([`IncomingFile::resume`]), so the check still
//! covers every byte.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Where the bytes on the channel start; 0 unless resumed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
            offset: 0,
        }
    }

    /// The header of the file at `path`, hashed as it is read (a
    /// [`FileSource::Path`] to send).
    pub fn of_file(id: &str, name: &str, mime: &str, path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut hash = Sha256::new();
        let mut buffer = vec![0; HASH_READ_BYTES];
        let mut size = 0;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
            size += n as u64;
        }
        Ok(FileHeader {
            kind: "file".to_owned(),
            id: id.to_owned(),
            name: name.to_owned(),
            size,
            mime: mime.to_owned(),
            sha256: hash.hex(),
            chunk_bytes: CHUNK_BYTES,
            offset: 0,
        })
    }

    pub fn to_json(&self) -> String {
        // Strings and numbers only: serializing cannot fail.
        serde_json::to_string(self).expect("file headers serialize")
    }
}

/// [`FileHeader::of_file`] reads this much at a time.
const HASH_READ_BYTES: usize = 1024 * 1024;

/// Where the bytes of a file to send come from.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// Held in memory, as the web client holds a file.
    Memory(Arc<Vec<u8>>),
    /// Read from disk as the channel takes them: [`CHUNK_BYTES`] in
    /// memory whatever the file's size. The file must not change while
    /// it is sent (the recipient's SHA-256 check would fail).
    Path(PathBuf),
}

impl FileSource {
    /// Its length in bytes, now.
    pub fn size(&self) -> std::io::Result<u64> {
        match self {
            FileSource::Memory(data) => Ok(data.len() as u64),
            FileSource::Path(path) => Ok(std::fs::metadata(path)?.len()),
        }
    }
}

impl From<Arc<Vec<u8>>> for FileSource {
    fn from(data: Arc<Vec<u8>>) -> Self {
        FileSource::Memory(data)
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

/// SHA-256 computed as bytes come in.
#[derive(Clone)]
pub struct Sha256(digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Sha256(digest::Context::new(&digest::SHA256))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything so far, as lowercase hex; more may follow.
    pub fn hex(&self) -> String {
        hex(self.0.clone().finish().as_ref())
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
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
    #[error("the sender starts at byte {offset}, but we have {have}")]
    WrongOffset { offset: u64, have: u64 },
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
#[derive(Debug)]
pub struct IncomingFile {
    header: Option<FileHeader>,
    /// The bytes, when kept here.
    data: Vec<u8>,
    keep: bool,
    /// Bytes of the file we have, from before this transfer on.
    received: u64,
    /// Bytes we had before this transfer.
    had: u64,
    hash: Sha256,
    complete: bool,
}

impl Default for IncomingFile {
    fn default() -> Self {
        IncomingFile::new()
    }
}

impl IncomingFile {
    /// A whole file, kept in memory ([`IncomingFile::data`]).
    pub fn new() -> Self {
        IncomingFile {
            header: None,
            data: Vec::new(),
            keep: true,
            received: 0,
            had: 0,
            hash: Sha256::new(),
            complete: false,
        }
    }

    /// A file whose first `had` bytes, hashed into `hash`, the caller
    /// keeps; it stores the bytes that follow itself, as they come (none
    /// are kept here). The sender must start at `had`.
    pub fn resume(had: u64, hash: Sha256) -> Self {
        IncomingFile {
            keep: false,
            received: had,
            had,
            hash,
            ..IncomingFile::new()
        }
    }

    /// The header, once it arrived.
    pub fn header(&self) -> Option<&FileHeader> {
        self.header.as_ref()
    }

    /// The bytes received so far (all of them once complete), unless the
    /// caller keeps them ([`IncomingFile::resume`]).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Whether the caller stores the bytes.
    pub fn is_streamed(&self) -> bool {
        !self.keep
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
            if header.offset != self.had || header.offset > header.size {
                return Err(TransferError::WrongOffset {
                    offset: header.offset,
                    have: self.had,
                });
            }
            let done = header.size == self.received;
            self.header = Some(header);
            return Ok(if done { self.finish() } else { Progress::Started });
        };
        if is_text || self.complete {
            return Ok(Progress::Ignored);
        }
        let size = header.size;
        if self.received + data.len() as u64 > size {
            return Err(TransferError::TooLong(size));
        }
        self.hash.update(data);
        if self.keep {
            self.data.extend_from_slice(data);
        }
        self.received += data.len() as u64;
        if self.received == size {
            return Ok(self.finish());
        }
        Ok(Progress::Received(self.received))
    }

    /// The channel closed: an error unless every byte had arrived.
    pub fn handle_close(&self) -> Result<(), TransferError> {
        match &self.header {
            Some(h) if !self.complete => Err(TransferError::Incomplete {
                received: self.received,
                size: h.size,
            }),
            _ => Ok(()),
        }
    }

    fn finish(&mut self) -> Progress {
        self.complete = true;
        let sha256 = self.hash.hex();
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
    fn resumed_transfer_hashes_the_whole_file() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 13) as u8).collect();
        let had = 20_000;
        let mut prefix = Sha256::new();
        prefix.update(&data[..had]);
        let mut incoming = IncomingFile::resume(had as u64, prefix);
        let mut header = FileHeader::new("r", "a.bin", "application/octet-stream", &data);
        header.offset = had as u64;
        assert!(header.to_json().contains(r#""offset":20000"#));
        assert_eq!(
            incoming.handle_message(header.to_json().as_bytes(), true),
            Ok(Progress::Started)
        );
        let mut last = None;
        for chunk in data[had..].chunks(CHUNK_BYTES) {
            last = Some(incoming.handle_message(chunk, false).unwrap());
        }
        assert!(
            matches!(last, Some(Progress::Complete { verified: true, .. })),
            "{last:?}"
        );
        assert!(incoming.data().is_empty() && incoming.is_streamed());
        // A sender starting elsewhere is refused.
        let mut incoming = IncomingFile::resume(5, Sha256::new());
        header.offset = 0;
        assert_eq!(
            incoming.handle_message(header.to_json().as_bytes(), true),
            Err(TransferError::WrongOffset { offset: 0, have: 5 })
        );
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
    fn header_of_a_file_is_hashed_as_read() {
        let data: Vec<u8> = (0..(HASH_READ_BYTES + 1000) as u32).map(|i| (i * 31) as u8).collect();
        let path = std::env::temp_dir().join(format!("natter-header-{}.bin", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let header = FileHeader::of_file("x", "a.bin", "application/octet-stream", &path).unwrap();
        assert_eq!(header, FileHeader::new("x", "a.bin", "application/octet-stream", &data));
        assert_eq!(FileSource::Path(path.clone()).size().unwrap(), data.len() as u64);
        std::fs::remove_file(&path).unwrap();
        assert!(FileHeader::of_file("x", "a.bin", "", &path).is_err());
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

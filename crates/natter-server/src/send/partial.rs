//! A file being received, kept on disk so a transfer cut off can resume:
//! the bytes so far in `NAME.natter-part`, and beside them a sidecar
//! `NAME.natter-part.json` saying which file they belong to (size and
//! SHA-256) and how many of them are safely written. The sidecar is
//! updated only after the bytes it counts are synced, so it never claims
//! more than the part file holds.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use natter_client::Sha256;
use serde::{Deserialize, Serialize};

/// The sidecar is rewritten after this many new bytes.
const SYNC_EVERY: u64 = 1024 * 1024;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Sidecar {
    size: u64,
    sha256: String,
    have: u64,
}

/// The part file of one download.
pub struct Partial {
    file: File,
    path: PathBuf,
    sidecar_path: PathBuf,
    sidecar: Sidecar,
    /// Bytes in the part file (`sidecar.have` lags behind).
    written: u64,
}

impl Partial {
    /// Opens `dir/NAME.natter-part` for a file of `size` bytes with
    /// `sha256`: what a sidecar for that same file vouches for is kept
    /// and hashed, anything else starts over.
    pub fn open(dir: &Path, name: &str, size: u64, sha256: &str) -> io::Result<(Partial, Sha256)> {
        let path = dir.join(format!("{name}.natter-part"));
        let sidecar_path = dir.join(format!("{name}.natter-part.json"));
        let old: Option<Sidecar> = std::fs::read(&sidecar_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let on_disk = file.metadata()?.len();
        let have = match old {
            Some(old) if old.size == size && old.sha256 == sha256 => old.have.min(on_disk).min(size),
            _ => 0,
        };
        file.set_len(have)?;
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 1024 * 1024];
        let mut left = have;
        file.seek(SeekFrom::Start(0))?;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the part file shrank"));
            }
            hash.update(&buf[..n]);
            left -= n as u64;
        }
        let partial = Partial {
            file,
            path,
            sidecar_path,
            sidecar: Sidecar {
                size,
                sha256: sha256.to_owned(),
                have,
            },
            written: have,
        };
        partial.write_sidecar()?;
        Ok((partial, hash))
    }

    /// Bytes of the file on disk.
    pub fn bytes(&self) -> u64 {
        self.written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the next bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        if self.written >= self.sidecar.have + SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Flushes the bytes, then counts them in the sidecar.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.sidecar.have = self.written;
        self.write_sidecar()
    }

    fn write_sidecar(&self) -> io::Result<()> {
        // Write beside, then rename: a crash leaves the old sidecar or the new.
        let temporary = self.sidecar_path.with_extension("json.new");
        // A struct of numbers and a string: serializing cannot fail.
        std::fs::write(
            &temporary,
            serde_json::to_vec(&self.sidecar).expect("sidecars serialize"),
        )?;
        std::fs::rename(&temporary, &self.sidecar_path)
    }

    /// The file is whole and checked: gives it its name in `dir` (never
    /// over an existing file) and removes the sidecar.
    pub fn complete(self, dir: &Path, name: &str) -> io::Result<PathBuf> {
        self.file.sync_data()?;
        let target = new_file(dir, name, |candidate| std::fs::hard_link(&self.path, candidate))?;
        std::fs::remove_file(&self.path)?;
        std::fs::remove_file(&self.sidecar_path)?;
        Ok(target)
    }

    /// The bytes are wrong: removes the part file and its sidecar.
    pub fn discard(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)?;
        std::fs::remove_file(&self.sidecar_path)
    }
}

/// Calls `create` with `dir/name`, then `dir/stem (1).ext` and so on
/// while it fails because the file exists; the path it succeeded with.
pub fn new_file(dir: &Path, name: &str, mut create: impl FnMut(&Path) -> io::Result<()>) -> io::Result<PathBuf> {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
        _ => (name.to_owned(), String::new()),
    };
    for n in 0..1000 {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        match create(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many files of that name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("natter-partial-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn resumes_what_the_sidecar_vouches_for() {
        let dir = dir("resume");
        let data: Vec<u8> = (0..3 * SYNC_EVERY as u32).map(|i| (i % 251) as u8).collect();
        let sha = natter_client::transfer::sha256_hex(&data);
        let (mut partial, _) = Partial::open(&dir, "f.bin", data.len() as u64, &sha).unwrap();
        partial.write(&data[..SYNC_EVERY as usize + 10]).unwrap();
        // Unsynced bytes past the sidecar's count are dropped on reopening.
        partial
            .write(&data[SYNC_EVERY as usize + 10..SYNC_EVERY as usize + 20])
            .unwrap();
        drop(partial);
        let (mut partial, mut hash) = Partial::open(&dir, "f.bin", data.len() as u64, &sha).unwrap();
        assert_eq!(partial.bytes(), SYNC_EVERY + 10);
        partial.write(&data[partial.bytes() as usize..]).unwrap();
        hash.update(&data[SYNC_EVERY as usize + 10..]);
        assert_eq!(hash.hex(), sha);
        let saved = partial.complete(&dir, "f.bin").unwrap();
        assert_eq!(std::fs::read(&saved).unwrap(), data);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no part file or sidecar left"
        );
        // Another file of the same name starts over and is saved beside it.
        let (mut partial, _) = Partial::open(&dir, "f.bin", 3, "other").unwrap();
        assert_eq!(partial.bytes(), 0);
        partial.write(b"abc").unwrap();
        assert_eq!(partial.complete(&dir, "f.bin").unwrap(), dir.join("f (1).bin"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The zstd object an artifact is stored as: a third of the `.cwasm`'s bytes over
//! S3 (docs/benchmarks.md, "Cold"), decoded by the loader into its cache file with
//! the output bounded by the recorded size and hashed on the way.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use super::{ArtifactKey, ArtifactRef, Encoding, StoredObject, sha256};

/// The zstd level of stored artifacts. Measured on the JS example's 37 MB
/// `.cwasm` (single thread): level 9 is 28% of the raw size in ~1 s, level 3 is
/// 31% in 0.3 s, level 19 is 25% but takes ~30 s per target at publish; all
/// decompress at about the same speed.
pub const ZSTD_LEVEL: i32 = 9;

/// The artifact record and the object to store for `cwasm` compiled under `key`.
pub fn package(key: ArtifactKey, cwasm: &[u8]) -> std::io::Result<(ArtifactRef, Vec<u8>)> {
    let object = zstd::bulk::compress(cwasm, ZSTD_LEVEL)?;
    let artifact = ArtifactRef {
        key,
        sha256: sha256(cwasm),
        size: cwasm.len() as u64,
        stored: Some(StoredObject {
            encoding: Encoding::Zstd,
            sha256: sha256(&object),
            size: object.len() as u64,
        }),
    };
    Ok((artifact, object))
}

/// What decoding found wrong.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The output grew past the recorded size.
    #[error("decodes to more than the recorded {0} bytes")]
    TooLarge(u64),
    /// Not a valid zstd stream.
    #[error("not a valid zstd stream: {0}")]
    Corrupt(String),
    /// Writing the output failed.
    #[error("writing the decoded artifact: {0}")]
    Write(std::io::Error),
}

/// What a decode wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes written.
    pub len: u64,
    /// sha256 of those bytes.
    pub sha256: [u8; 32],
}

/// Decodes the `encoding` stream `input` into `out` in 1 MiB chunks, hashing the
/// output and stopping as soon as it passes `max` bytes.
pub fn decode_bounded(
    encoding: Encoding,
    input: impl Read,
    mut out: impl Write,
    max: u64,
) -> Result<Decoded, DecodeError> {
    let Encoding::Zstd = encoding;
    let mut decoder = zstd::stream::read::Decoder::new(input)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?
        .single_frame();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = decoder
            .read(&mut buf)
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        if n == 0 {
            break;
        }
        len += n as u64;
        if len > max {
            return Err(DecodeError::TooLarge(max));
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(DecodeError::Write)?;
    }
    out.flush().map_err(DecodeError::Write)?;
    Ok(Decoded {
        len,
        sha256: hasher.finalize().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ArtifactKey {
        ArtifactKey {
            content: crate::content::ContentHash::of(b"x"),
            target: crate::engine::Target::host(),
            fingerprint: "fp".into(),
        }
    }

    #[test]
    fn round_trips_and_records_both_hashes() {
        let cwasm: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let (art, object) = package(key(), &cwasm).unwrap();
        let stored = art.stored.clone().unwrap();
        assert!(object.len() < cwasm.len() / 4, "{}", object.len());
        assert_eq!(stored.sha256, sha256(&object));
        assert_eq!(art.sha256, sha256(&cwasm));
        assert!(art.object_key().ends_with(".cwasm.zst"));
        let mut out = Vec::new();
        let d = decode_bounded(Encoding::Zstd, &object[..], &mut out, art.size).unwrap();
        assert_eq!((d.len, d.sha256), (art.size, art.sha256));
        assert_eq!(out, cwasm);
    }

    #[test]
    fn output_past_the_recorded_size_stops() {
        // A bomb: 64 MiB of zeros in a few KiB; decoding stops at the bound.
        let object = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).unwrap();
        let mut out = Vec::new();
        let err = decode_bounded(Encoding::Zstd, &object[..], &mut out, 1000).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge(1000)), "{err}");
        assert!(out.len() <= 1000, "{}", out.len());
        let err = decode_bounded(Encoding::Zstd, &b"not zstd"[..], Vec::new(), 1000).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt(_)), "{err}");
    }
}

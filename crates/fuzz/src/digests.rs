//! Recomputes the SHA-256 digests a mutated input's formats carry, so that
//! mutations reach the parsing the digests guard: a heman artifact container
//! (`HEMAN`, kind, version, fingerprint, payload length, payload, digest)
//! and the CKKS objects inside it (`HEMANCKS`, ..., body, digest), also when
//! joined as parts (count, then length-prefixed parts).

use sha2::{Digest, Sha256};

const CONTAINER_MAGIC: &[u8] = b"HEMAN";
const CONTAINER_HEADER: usize = 5 + 1 + 2 + 32 + 8;
const CKKS_MAGIC: &[u8] = b"HEMANCKS";
const CKKS_HEADER: usize = 8 + 2 + 1 + 1 + 32 + 8;
const DIGEST: usize = 32;

/// `bytes` with every digest it carries made right, where its structure can
/// be followed; anything else is left as it is.
pub fn repaired(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.starts_with(CKKS_MAGIC) {
        seal(&mut out, CKKS_HEADER);
    } else if out.starts_with(CONTAINER_MAGIC) && out.len() >= CONTAINER_HEADER + DIGEST {
        let end = out.len() - DIGEST;
        repair_parts(&mut out[CONTAINER_HEADER..end]);
        if out[CONTAINER_HEADER..end].starts_with(CKKS_MAGIC) {
            seal(&mut out[CONTAINER_HEADER..end], CKKS_HEADER);
        }
        seal(&mut out, CONTAINER_HEADER);
    }
    out
}

/// Writes the digest of everything before the last 32 bytes into them.
fn seal(bytes: &mut [u8], header: usize) {
    if bytes.len() < header + DIGEST {
        return;
    }
    let end = bytes.len() - DIGEST;
    let digest = Sha256::digest(&bytes[..end]);
    bytes[end..].copy_from_slice(&digest);
}

/// Seals each CKKS object of a joined-parts payload in place.
fn repair_parts(payload: &mut [u8]) {
    let Some(count) = payload.get(..4) else {
        return;
    };
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
    let mut at = 4;
    for _ in 0..count.min(1 << 16) {
        let Some(len) = payload.get(at..at + 8) else {
            return;
        };
        let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (at + 8).checked_add(l))
            .filter(|&e| e <= payload.len())
        else {
            return;
        };
        if payload[at + 8..end].starts_with(CKKS_MAGIC) {
            seal(&mut payload[at + 8..end], CKKS_HEADER);
        }
        at = end;
    }
}

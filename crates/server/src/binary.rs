//! Triton's binary-tensor extension: a JSON header of a given length, then
//! raw tensors; and the BYTES element encoding (u32 LE length + bytes).

use bytes::Bytes;

use crate::error::{Result, ServerError};

/// The header naming the length of the JSON part.
pub const HEADER: &str = "inference-header-content-length";

/// Splits a body into its JSON part and the binary rest.
pub fn split(body: &Bytes, json_len: Option<usize>) -> Result<(Bytes, Bytes)> {
    match json_len {
        None => Ok((body.clone(), Bytes::new())),
        Some(n) if n <= body.len() => Ok((body.slice(..n), body.slice(n..))),
        Some(n) => Err(ServerError::BadRequest(format!(
            "Inference-Header-Content-Length is {n} but the body has only {} bytes",
            body.len()
        ))),
    }
}

/// Decodes a BYTES tensor's raw contents into its elements (views into
/// `raw`, not copies: ciphertexts are large), refusing more than
/// `max_elements` as soon as it sees one: each element is a 32-byte handle
/// for as little as 4 bytes of input, so an unbounded count would turn a
/// 256 MiB body into 2 GiB of handles.
pub fn decode_bytes_elements(raw: &Bytes, max_elements: usize) -> Result<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        if out.len() == max_elements {
            return Err(ServerError::BadRequest(format!(
                "BYTES tensor holds more than {max_elements} element(s)"
            )));
        }
        if raw.len() - at < 4 {
            return Err(ServerError::BadRequest(
                "BYTES tensor truncated inside an element length".into(),
            ));
        }
        let len = u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 4;
        if raw.len() - at < len {
            return Err(ServerError::BadRequest(format!(
                "BYTES element of {len} bytes but only {} remain",
                raw.len() - at
            )));
        }
        out.push(raw.slice(at..at + len));
        at += len;
    }
    Ok(out)
}

/// Encodes BYTES elements as raw tensor contents.
pub fn encode_bytes_elements(elements: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in elements {
        out.extend_from_slice(&(e.len() as u32).to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_truncation() {
        let raw = Bytes::from(encode_bytes_elements(&[b"abc", b""]));
        assert_eq!(
            decode_bytes_elements(&raw, usize::MAX).unwrap(),
            vec![Bytes::from_static(b"abc"), Bytes::new()]
        );
        assert!(decode_bytes_elements(&raw.slice(..5), 9).is_err());
        assert!(decode_bytes_elements(&raw.slice(..2), 9).is_err());
        // Four bytes make an element: their count is bounded before it grows.
        let empties = Bytes::from(vec![0u8; 4 << 20]);
        let error = decode_bytes_elements(&empties, 1).unwrap_err();
        assert!(error.to_string().contains("more than 1 element"), "{error}");
        assert!(split(&Bytes::from_static(b"abc"), Some(4)).is_err());
        let (json, rest) = split(&Bytes::from_static(b"abcd"), Some(1)).unwrap();
        assert_eq!((&json[..], &rest[..]), (&b"a"[..], &b"bcd"[..]));
    }
}

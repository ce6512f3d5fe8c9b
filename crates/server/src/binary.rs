//! Triton's binary-tensor extension: a JSON header of a given length, then
//! raw tensors; and the BYTES element encoding (u32 LE length + bytes).

use crate::error::{Result, ServerError};

/// The header naming the length of the JSON part.
pub const HEADER: &str = "inference-header-content-length";

/// Splits a body into its JSON part and the binary rest.
pub fn split(body: &[u8], json_len: Option<usize>) -> Result<(&[u8], &[u8])> {
    match json_len {
        None => Ok((body, &[])),
        Some(n) if n <= body.len() => Ok(body.split_at(n)),
        Some(n) => Err(ServerError::BadRequest(format!(
            "Inference-Header-Content-Length is {n} but the body has only {} bytes",
            body.len()
        ))),
    }
}

/// Decodes a BYTES tensor's raw contents into its elements.
pub fn decode_bytes_elements(mut raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        if raw.len() < 4 {
            return Err(ServerError::BadRequest(
                "BYTES tensor truncated inside an element length".into(),
            ));
        }
        let len = u32::from_le_bytes(raw[..4].try_into().expect("4 bytes")) as usize;
        raw = &raw[4..];
        if raw.len() < len {
            return Err(ServerError::BadRequest(format!(
                "BYTES element of {len} bytes but only {} remain",
                raw.len()
            )));
        }
        out.push(raw[..len].to_vec());
        raw = &raw[len..];
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
        let raw = encode_bytes_elements(&[b"abc", b""]);
        assert_eq!(
            decode_bytes_elements(&raw).unwrap(),
            vec![b"abc".to_vec(), vec![]]
        );
        assert!(decode_bytes_elements(&raw[..5]).is_err());
        assert!(decode_bytes_elements(&raw[..2]).is_err());
        assert!(split(b"abc", Some(4)).is_err());
        assert_eq!(split(b"abcd", Some(1)).unwrap(), (&b"a"[..], &b"bcd"[..]));
    }
}

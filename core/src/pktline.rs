//! The pkt-line framing of git's wire protocol, with a hard length limit.
//!
//! Each packet is a 4-hex-digit length (counting the 4 digits) and a payload;
//! `0000` is a flush, `0001` a delimiter and `0002` a response end (protocol v2).

/// Git's own maximum packet length, header included.
pub const MAX_PKT_LEN: usize = 65520;

/// One decoded packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Flush,
    Delim,
    ResponseEnd,
    Data(&'a [u8]),
}

/// Why bytes are not a valid pkt-line stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktError {
    #[error("pkt-line length header {0:?} is not four hex digits")]
    BadHeader(String),
    #[error("pkt-line of {0} bytes exceeds the limit of {MAX_PKT_LEN}")]
    TooLong(usize),
    #[error("pkt-line length {0} is reserved")]
    Reserved(usize),
}

/// Decodes the packet at the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not yet hold a whole packet, otherwise the
/// packet and the number of bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Packet<'_>, usize)>, PktError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(header)
        .ok()
        .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(text) = text else {
        return Err(PktError::BadHeader(
            String::from_utf8_lossy(header).into_owned(),
        ));
    };
    let len = usize::from_str_radix(text, 16).map_err(|_| PktError::BadHeader(text.to_owned()))?;
    match len {
        0 => return Ok(Some((Packet::Flush, 4))),
        1 => return Ok(Some((Packet::Delim, 4))),
        2 => return Ok(Some((Packet::ResponseEnd, 4))),
        3 => return Err(PktError::Reserved(len)),
        _ => {}
    }
    if len > MAX_PKT_LEN {
        return Err(PktError::TooLong(len));
    }
    Ok(buf.get(4..len).map(|payload| (Packet::Data(payload), len)))
}

/// Encodes one data packet.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), PktError> {
    let len = payload.len() + 4;
    if len > MAX_PKT_LEN {
        return Err(PktError::TooLong(len));
    }
    out.extend_from_slice(format!("{len:04x}").as_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a flush packet.
pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_special_packets() {
        assert_eq!(decode(b"0000rest").unwrap(), Some((Packet::Flush, 4)));
        assert_eq!(decode(b"0001").unwrap(), Some((Packet::Delim, 4)));
        assert_eq!(decode(b"0002").unwrap(), Some((Packet::ResponseEnd, 4)));
        assert_eq!(decode(b"0003").unwrap_err(), PktError::Reserved(3));
    }

    #[test]
    fn waits_for_a_whole_packet() {
        assert_eq!(decode(b"00").unwrap(), None);
        assert_eq!(decode(b"0009abc").unwrap(), None);
        assert_eq!(
            decode(b"0009abcde").unwrap(),
            Some((Packet::Data(b"abcde"), 9))
        );
    }

    #[test]
    fn refuses_bad_and_oversized_headers() {
        assert!(matches!(decode(b"zzzz"), Err(PktError::BadHeader(_))));
        assert!(matches!(decode(b"+fff"), Err(PktError::BadHeader(_))));
        assert_eq!(decode(b"fff1").unwrap_err(), PktError::TooLong(0xfff1));
        assert!(encode(&vec![0; MAX_PKT_LEN], &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut out = Vec::new();
            encode(&payload, &mut out).unwrap();
            let (packet, used) = decode(&out).unwrap().unwrap();
            prop_assert_eq!(used, out.len());
            if payload.is_empty() {
                // "0004" is an empty data packet, legal though unusual.
                prop_assert_eq!(packet, Packet::Data(&[]));
            } else {
                prop_assert_eq!(packet, Packet::Data(&payload));
            }
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }
    }
}

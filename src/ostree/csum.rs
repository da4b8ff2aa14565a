//! The one checksum type: an ostree object's SHA-256 as 32 raw bytes, as dirtree and commit
//! objects store it. Hex strings appear only at the edges: object paths, libostree calls and
//! messages ([`hex()`], [`from_hex`]).

/// A SHA-256 object checksum, raw.
pub type Csum = [u8; 32];

/// Lower-case hex, as ostree names objects.
pub fn hex(c: &Csum) -> String {
    hex::encode(c)
}

/// A checksum from 64 hex digits; None for anything else.
pub fn from_hex(s: &str) -> Option<Csum> {
    if s.len() != 64 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// A checksum from a serialised `ay` of 32 bytes; None for any other length.
pub fn from_bytes(b: &[u8]) -> Option<Csum> {
    b.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        let c: Csum = core::array::from_fn(|i| i as u8 * 7);
        assert_eq!(from_hex(&hex(&c)), Some(c));
        assert_eq!(
            from_hex(&hex(&c).to_uppercase()),
            Some(c),
            "hex accepts upper case"
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert_eq!(from_bytes(&[0; 31]), None);
        assert_eq!(from_bytes(&[1; 32]), Some([1; 32]));
    }
}

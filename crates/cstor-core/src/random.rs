//! Random names: layer and image IDs, overlay link names, lock tokens and temp-file suffixes.
//!
//! containers/storage draws these from the kernel's CSPRNG; so does cstor (`getrandom(2)`), so
//! that two writers — two cstor processes or cstor and podman — never pick the same name.

/// Fills `buf` from the kernel's random source.
pub fn fill(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            // EINTR is the only failure getrandom(2) has once the pool is initialised.
            Err(_) => continue,
        }
    }
}

/// A new 64-hex-digit ID, the shape of containers/storage's `stringid.GenerateRandomID`.
pub fn hex_id() -> String {
    let mut bytes = [0u8; 32];
    fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new overlay link name: 26 characters of upper-case base32 without padding, as the overlay
/// driver names the entries of `overlay/l/` (16 random bytes encode to 26 characters).
pub fn link_name() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    let mut bits = 0u32;
    let mut count = 0;
    let mut name = String::with_capacity(26);
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            name.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    if count > 0 {
        name.push(ALPHABET[((bits << (5 - count)) & 31) as usize] as char);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_link_names_have_the_shapes_containers_storage_uses() {
        let id = hex_id();
        assert_eq!(id.len(), 64);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, hex_id());
        let link = link_name();
        assert_eq!(link.len(), 26, "{link}");
        assert!(link
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
    }
}

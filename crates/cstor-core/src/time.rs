//! Timestamps as Go's `time.Time` marshals them to JSON, which is how containers/storage writes
//! `created`, podman's tarball import its config's `created` (a file's local time), and how the
//! registry server stamps its access log.

/// Now as Go's `time.Now().UTC()` marshals it: RFC 3339 with nanoseconds, trailing zeros cut.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a UTC time as Go's `time.Time` JSON does.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    rfc3339_at_offset(secs, nanos, 0)
}

/// A time in the local time zone as Go's `time.Time` JSON marshals one whose location is
/// `time.Local` (a file's `ModTime()`): the wall clock there with its offset, `Z` when that is 0.
pub fn local_rfc3339(secs: i64, nanos: u32) -> String {
    // SAFETY: localtime_r only writes the `tm` it is given.
    let offset = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let t: libc::time_t = secs as libc::time_t;
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    };
    rfc3339_at_offset(secs, nanos, offset)
}

fn rfc3339_at_offset(secs: i64, nanos: u32, offset: i64) -> String {
    let local = secs + offset;
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut text = format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        text.push('.');
        text.push_str(frac.trim_end_matches('0'));
    }
    if offset == 0 {
        text.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.abs() / 60;
        text.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_go_marshals_them() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_558_697, 602_774_085),
            "2026-11-24T22:18:17.602774085Z"
        );
        assert_eq!(rfc3339(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
        assert_eq!(
            rfc3339_at_offset(951_782_400, 0, -(5 * 3600 + 30 * 60)),
            "2000-02-28T18:30:00-05:30"
        );
        assert_eq!(
            rfc3339_at_offset(0, 1, 3600),
            "1970-01-01T01:00:00.000000001+01:00"
        );
    }
}

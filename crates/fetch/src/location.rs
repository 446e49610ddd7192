/// Whether `url` lies under `location`: it starts with it, the prefix
/// ends at a path boundary (so `https://h/b` admits neither `https://h/bb`
/// nor `https://h/b.evil`), and the path holds no dot segments, which a
/// server could resolve outside it.
pub fn is_under(url: &str, location: &str) -> bool {
    let Some(rest) = url.strip_prefix(location) else {
        return false;
    };
    let boundary = location.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?']);
    let path = url.split_once('?').map_or(url, |(path, _)| path);
    let dotted = path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    });
    boundary && !dotted && !path.to_ascii_lowercase().contains("%2f")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_locations_admit_only_what_is_under_them() {
        let location = "https://bucket.s3.us-east-1.amazonaws.com/vgi-rpc/";
        let under = |url: &str| is_under(url, location);
        assert!(under(
            "https://bucket.s3.us-east-1.amazonaws.com/vgi-rpc/ab.arrow?X-Amz-Signature=1"
        ));
        assert!(!under(
            "https://bucket.s3.us-east-1.amazonaws.com/other/ab.arrow"
        ));
        assert!(!under(
            "https://bucket.s3.us-east-1.amazonaws.com.evil/vgi-rpc/ab"
        ));
        assert!(!under("http://169.254.169.254/latest/meta-data/"));
        assert!(!under(
            "https://bucket.s3.us-east-1.amazonaws.com/vgi-rpc/../secret"
        ));
        assert!(!under(
            "https://bucket.s3.us-east-1.amazonaws.com/vgi-rpc/%2E%2E/secret"
        ));
        // Without a trailing slash the prefix still ends at a boundary.
        assert!(is_under(
            "http://127.0.0.1:9000/b/k",
            "http://127.0.0.1:9000/b"
        ));
        assert!(!is_under(
            "http://127.0.0.1:9000/bb/k",
            "http://127.0.0.1:9000/b"
        ));
        assert!(!is_under(
            "http://127.0.0.1:90001/b/k",
            "http://127.0.0.1:9000"
        ));
    }
}

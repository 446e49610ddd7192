//! Copies large enough to be split across two threads land byte for byte
//! where a single copy would put them.

use std::io::Read;

use vgirpc_shm::Mapping;

/// Larger than the size from which copies are split, and odd, so that the
/// two halves differ in length.
const LARGE: usize = (9 << 20) + 7;

fn mapping(len: u64) -> Mapping {
    let path = std::env::temp_dir().join(format!("vgirpc-shm-large-{}-{len}", std::process::id()));
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .expect("a temporary segment file");
    std::fs::remove_file(&path).expect("unlinked while mapped");
    file.set_len(len).expect("sized");
    Mapping::map(&file).expect("mapped")
}

/// Bytes that differ from their neighbours and from a shifted copy of
/// themselves, so a misplaced half shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn a_large_write_then_copy_out_round_trips() {
    let data = pattern(LARGE);
    let segment = mapping(LARGE as u64 + 4096);
    segment.write_at(4096, &data).expect("inside");
    let copied = segment.copy_out(4096, LARGE).expect("inside");
    assert!(copied == data, "the copy out differs from what was written");
    // The bytes around the region are untouched.
    assert_eq!(segment.copy_out(0, 4096).expect("inside"), vec![0; 4096]);
}

#[test]
fn a_large_region_reads_back_through_read_at_and_the_reader() {
    let data = pattern(LARGE);
    let segment = mapping(LARGE as u64);
    segment
        .write_pieces(0, &[&data[..LARGE / 3], &data[LARGE / 3..]])
        .expect("inside");
    let mut read = vec![0u8; LARGE];
    segment.read_at(0, &mut read).expect("inside");
    assert!(read == data, "read_at differs from what was written");
    let mut streamed = Vec::new();
    segment
        .region(0, LARGE as u64)
        .expect("inside")
        .read_to_end(&mut streamed)
        .expect("read");
    assert!(
        streamed == data,
        "the region reader differs from what was written"
    );
}

#[test]
fn a_large_copy_past_the_end_is_refused_before_copying() {
    let segment = mapping(LARGE as u64);
    assert!(segment.copy_out(1, LARGE).is_err());
    assert!(segment.write_at(1, &pattern(LARGE)).is_err());
    assert_eq!(segment.copy_out(0, 16).expect("inside"), vec![0; 16]);
}

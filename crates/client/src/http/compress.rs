//! zstd for request bodies, used only where it pays: the server reads an
//! uncompressed body as well, so a body zstd cannot shrink goes as it is,
//! and nothing is compressed on the way to a server on this host.

use std::io::Write as _;
use std::net::IpAddr;

use bytes::Bytes;
use vgirpc_fetch::{SMALL_BODY, worth_compressing_pieces};
use zstd::stream::write::Encoder;

use super::payload::Payload;

/// Bodies up to this size are compressed whole and the smaller kept;
/// larger ones are judged from samples first.
const WHOLE: usize = 64 * 1024;

/// `body` compressed at `level`, or `None` to send it as it is: it is
/// below [`SMALL_BODY`], zstd did not make a body of up to [`WHOLE`]
/// smaller, or samples of a larger one shrank by less than a tenth (random
/// or already packed Arrow buffers, where compressing cost more client and
/// server time than the bytes it saved).
pub(super) fn compress(body: &Payload, level: i32) -> std::io::Result<Option<Bytes>> {
    if body.len() < SMALL_BODY {
        return Ok(None);
    }
    // Judged and compressed piece by piece: a body held in several pieces
    // (a large batch's own buffers) is never joined into one.
    if body.len() > WHOLE {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        if !worth_compressing_pieces(body.pieces(), |sample| {
            Ok::<_, std::io::Error>(compressor.compress(sample)?.len())
        })? {
            return Ok(None);
        }
    }
    let mut encoder = Encoder::new(Vec::with_capacity(body.len() / 2), level)?;
    // The frame states its length, as a one-shot compression's does: a
    // decoder may size its output from it, and some insist on it.
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(body.len() as u64))?;
    for piece in body.pieces() {
        encoder.write_all(piece)?;
    }
    let compressed = encoder.finish()?;
    Ok((compressed.len() < body.len()).then(|| Bytes::from(compressed)))
}

/// Whether a URL's `host` names this machine: `localhost`, a name under
/// `.localhost` (RFC 6761 keeps them on the loopback) or a loopback
/// address, IPv6 ones in brackets as URLs write them.
pub(super) fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let is_localhost = |name: &str| name.eq_ignore_ascii_case("localhost");
    if is_localhost(host)
        || host
            .rsplit_once('.')
            .is_some_and(|(_, last)| is_localhost(last))
    {
        return true;
    }
    let address = host.trim_start_matches('[').trim_end_matches(']');
    address
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use arrow_schema::{Field, Schema};
    use vgirpc_test_support::noise;
    use vgirpc_wire::metadata::Metadata;

    use super::*;

    #[test]
    fn loopback_hosts_are_told_from_others() {
        for host in [
            "localhost",
            "LocalHost",
            "localhost.",
            "api.localhost",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "example.com",
            "localhost.example.com",
            "notlocalhost",
            "10.0.0.1",
            "0.0.0.0",
            "[::]",
            "[2001:db8::1]",
            "128.0.0.1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn bodies_zstd_cannot_shrink_go_as_they_are() {
        for len in [SMALL_BODY, WHOLE, 4 * WHOLE] {
            let body = Payload::from(Bytes::from(noise(len)));
            assert_eq!(compress(&body, 3).unwrap(), None, "{len} bytes");
        }
    }

    #[test]
    fn small_bodies_go_as_they_are() {
        let zeros = Payload::from(Bytes::from(vec![0u8; SMALL_BODY - 1]));
        assert_eq!(compress(&zeros, 3).unwrap(), None);
    }

    /// A request body as the client builds one: a batch of one column,
    /// held in pieces (the stream's framing and the column's own buffer).
    fn batch_payload(column: ArrayRef) -> Payload {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "x",
            column.data_type().clone(),
            false,
        )]));
        let batch = RecordBatch::try_new(schema, vec![column]).unwrap();
        let payload = Payload::of_batch(&batch, &Metadata::new()).unwrap();
        assert!(payload.pieces().len() > 1);
        payload
    }

    #[test]
    fn a_body_in_pieces_is_compressed_as_one_frame_that_states_its_length() {
        let counting = batch_payload(Arc::new(Int64Array::from_iter_values(0..100_000)));
        let compressed = compress(&counting, 3).unwrap().expect("compressible");
        let plain = counting.contiguous();
        let stated = zstd::zstd_safe::get_frame_content_size(&compressed).unwrap();
        assert_eq!(stated, Some(plain.len() as u64));
        assert_eq!(
            zstd::bulk::decompress(&compressed, plain.len()).unwrap(),
            plain
        );

        let noisy = noise(8 * 100_000);
        let noisy = batch_payload(Arc::new(Int64Array::from_iter_values(
            noisy
                .chunks(8)
                .map(|v| i64::from_le_bytes(v.try_into().unwrap())),
        )));
        assert_eq!(compress(&noisy, 3).unwrap(), None);
    }

    #[test]
    fn compressible_bodies_round_trip() {
        for len in [SMALL_BODY, WHOLE, 4 * WHOLE] {
            let body: Bytes = (0..len / 4)
                .flat_map(|i| (i as u32 / 5).to_le_bytes())
                .collect::<Vec<u8>>()
                .into();
            let compressed = compress(&Payload::from(body.clone()), 3)
                .unwrap()
                .expect("compressible");
            assert!(compressed.len() < body.len());
            assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), body);
        }
    }
}

//! A byte buffer that grows with what actually arrives.
//!
//! A peer's claim of how much is coming (a `Content-Length`, the content
//! size in a zstd frame header) is a hint, never a reason to reserve memory
//! up front: a 400-byte request may claim gigabytes. So the buffer starts
//! small, grows by a factor as bytes arrive, and moves to the claimed size
//! once a 64th of it is actually held. The allocations left behind add up
//! to less than a 30th of the final size, which matters with allocators that
//! keep freed memory resident for reuse (a body of `n` bytes then peaks at
//! about 1.1 `n`). A false claim costs at most 64 times the bytes really
//! sent, in address space only (untouched pages are not resident), and an
//! allocation that fails fails the request, not the process.
//!
//! A claim of [`MAPPED_BYTES`] or more is held in anonymous memory
//! mappings instead of the heap, from its first byte: small ones growing
//! fourfold until a 1024th of the claim has arrived, then one of the
//! claimed size. The allocator a worker uses for speed (mimalloc) keeps
//! freed memory for reuse, and returns it only when it is next called
//! after a delay, which an idle worker never does: a 1 GiB body, or the
//! few megabytes of heap the buffer passed through on its way to the
//! mapping, would stay resident after the request. A mapping is returned
//! to the system the moment the last slice of the body is dropped.

use std::collections::TryReserveError;

use bytes::Bytes;
use memmap2::{MmapMut, MmapOptions};

/// Smallest claim held in a mapping rather than on the heap.
pub(crate) const MAPPED_BYTES: usize = 32 * 1024 * 1024;

/// A claim of at least [`MAPPED_BYTES`] gets a mapping of its full size
/// once this fraction of it (1/n) has arrived. Earlier than
/// [`BELIEVED_AFTER`]: a mapping costs only address space until it is
/// written, and the smaller mappings before it are copied on each move.
const MAPPED_AFTER: usize = 1024;

/// The first reservation, whatever the claim.
const FIRST_RESERVATION: usize = 64 * 1024;

/// A claim is believed once this fraction of it (1/n) has arrived.
const BELIEVED_AFTER: usize = 64;

/// One contiguous buffer; see the module documentation for how it grows.
#[derive(Debug, Default)]
pub(crate) struct GrowingBuffer {
    bytes: Vec<u8>,
    /// How many bytes the peer says are coming, if it said.
    claimed: Option<usize>,
    /// Where the bytes go once a large claim is believed; `bytes` is then
    /// empty.
    mapped: Option<Mapped>,
}

/// The first `len` bytes of an anonymous mapping.
#[derive(Debug)]
struct Mapped {
    map: MmapMut,
    len: usize,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl GrowingBuffer {
    /// An empty buffer for a peer that claims `claimed` bytes are coming.
    pub(crate) fn new(claimed: Option<usize>) -> Self {
        Self {
            bytes: Vec::new(),
            claimed,
            mapped: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match &self.mapped {
            Some(mapped) => mapped.len,
            None => self.bytes.len(),
        }
    }

    /// Appends `data`, growing as the module documentation says.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), TryReserveError> {
        if self.bytes.is_empty() && self.extend_mapped(data) {
            return Ok(());
        }
        self.make_room(data.len(), usize::MAX)?;
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Appends `data` to the mapping a large claim is held in (see
    /// [`MAPPED_BYTES`]). `false` when the claim is not that large, or
    /// once more than claimed arrives or the system has no mapping to
    /// give: the bytes held so far are then on the heap, which grows from
    /// there.
    fn extend_mapped(&mut self, data: &[u8]) -> bool {
        let Some(claimed) = self.claimed.filter(|&claimed| claimed >= MAPPED_BYTES) else {
            return false;
        };
        let (held, room) = self
            .mapped
            .as_ref()
            .map_or((0, 0), |mapped| (mapped.len, mapped.map.len()));
        let needed = held.saturating_add(data.len());
        if needed > claimed {
            self.claimed = None;
            self.move_to_heap();
            return false;
        }
        if needed > room {
            let believed = claimed / MAPPED_AFTER;
            let size = if needed >= believed {
                claimed
            } else {
                room.saturating_mul(4)
                    .max(FIRST_RESERVATION)
                    .min(believed)
                    .max(needed)
            };
            let Ok(mut map) = MmapOptions::new().len(size).map_anon() else {
                self.move_to_heap();
                return false;
            };
            if let Some(old) = &self.mapped {
                map[..held].copy_from_slice(old.as_ref());
            }
            self.mapped = Some(Mapped { map, len: held });
        }
        let Some(mapped) = &mut self.mapped else {
            return false;
        };
        mapped.map[held..needed].copy_from_slice(data);
        mapped.len = needed;
        true
    }

    fn move_to_heap(&mut self) {
        if let Some(mapped) = self.mapped.take() {
            self.bytes = mapped.as_ref().to_vec();
        }
    }

    /// Makes room for at least one more byte and at most `wanted`, never
    /// growing the capacity past `ceiling`; returns the buffer to write
    /// into its spare capacity (for decoders that fill it directly). The
    /// room is empty when the buffer already holds `ceiling` bytes.
    pub(crate) fn spare(
        &mut self,
        wanted: usize,
        ceiling: usize,
    ) -> Result<&mut Vec<u8>, TryReserveError> {
        let room = wanted.min(ceiling.saturating_sub(self.bytes.len()));
        if room > 0 {
            self.make_room(room, ceiling)?;
        }
        Ok(&mut self.bytes)
    }

    /// The bytes held, as a vector (decoders fill buffers through
    /// [`spare`](Self::spare), which never maps).
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self.mapped {
            Some(mapped) => mapped.as_ref().to_vec(),
            None => self.bytes,
        }
    }

    /// The bytes held, without copying them.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.mapped {
            Some(mapped) => Bytes::from_owner(mapped),
            None => Bytes::from(self.bytes),
        }
    }

    fn make_room(&mut self, additional: usize, ceiling: usize) -> Result<(), TryReserveError> {
        let held = self.bytes.len();
        let needed = held.saturating_add(additional);
        if needed <= self.bytes.capacity() {
            return Ok(());
        }
        let target = match self.claimed {
            // Believed once this piece is in: straight to the claim.
            Some(claimed) if needed <= claimed && needed >= claimed / BELIEVED_AFTER => claimed,
            // Not yet believed: grow fast, but not past the point of
            // belief, so what is left behind stays small.
            Some(claimed) if needed <= claimed => held
                .saturating_mul(4)
                .max(FIRST_RESERVATION)
                .min(claimed / BELIEVED_AFTER)
                .max(needed),
            // No claim, or more than claimed: double.
            _ => held.saturating_mul(2).max(FIRST_RESERVATION).max(needed),
        };
        let target = target.min(ceiling).max(needed);
        self.bytes.try_reserve_exact(target - held)
    }
}

/// A buffer whose capacity is already what it will need.
impl From<Vec<u8>> for GrowingBuffer {
    fn from(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            claimed: None,
            mapped: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reserves_nothing_before_the_bytes_arrive() {
        for claimed in [MAPPED_BYTES - 1, 1 << 31] {
            let mut buffer = GrowingBuffer::new(Some(claimed));
            buffer.extend_from_slice(&[1; 10]).unwrap();
            let room = (buffer.mapped.as_ref()).map_or(buffer.bytes.capacity(), |m| m.map.len());
            assert_eq!(room, FIRST_RESERVATION, "claim of {claimed}");
        }
    }

    /// Feeds `total` bytes in `chunk`-sized pieces; returns the capacities
    /// left behind by the moves, added up, and how many moves there were.
    fn left_behind_while_filling(
        claimed: Option<usize>,
        total: usize,
        chunk: usize,
    ) -> (usize, usize) {
        let mut buffer = GrowingBuffer::new(claimed);
        let data = vec![0u8; chunk];
        let (mut left_behind, mut moves) = (0, 0);
        while buffer.len() < total {
            let piece = chunk.min(total - buffer.len());
            let before = buffer.bytes.capacity();
            buffer.extend_from_slice(&data[..piece]).unwrap();
            if buffer.bytes.capacity() != before {
                moves += 1;
                left_behind += before;
            }
        }
        assert_eq!(buffer.len(), total);
        (left_behind, moves)
    }

    #[test]
    fn a_true_claim_is_filled_at_about_its_size() {
        let total = 100 << 20;
        let (left_behind, moves) = left_behind_while_filling(Some(total), total, 256 * 1024);
        assert!(left_behind <= total / 30, "{left_behind} for {total}");
        assert!(moves <= 8, "{moves} moves");
    }

    #[test]
    fn without_a_claim_growth_doubles() {
        let total = 100 << 20;
        let (left_behind, moves) = left_behind_while_filling(None, total, 256 * 1024);
        assert!(left_behind <= 2 * total, "{left_behind} for {total}");
        assert!(moves <= 12, "{moves} moves");
    }

    #[test]
    fn more_than_claimed_keeps_growing_geometrically() {
        let (_, moves) = left_behind_while_filling(Some(1 << 20), 64 << 20, 16 * 1024);
        assert!(moves <= 12, "{moves} moves");
    }

    #[test]
    fn a_large_believed_claim_is_held_in_a_mapping_and_read_whole() {
        let total = MAPPED_BYTES + 12_345;
        let mut buffer = GrowingBuffer::new(Some(total));
        let mut expected = Vec::with_capacity(total);
        let mut step = 0u8;
        while expected.len() < total {
            let piece = vec![step; (total - expected.len()).min(300_000)];
            buffer.extend_from_slice(&piece).unwrap();
            expected.extend_from_slice(&piece);
            step = step.wrapping_add(1);
        }
        assert!(buffer.mapped.is_some(), "held in a mapping");
        assert_eq!(buffer.into_bytes(), expected);
    }

    #[test]
    fn a_large_claim_never_touches_the_heap() {
        let claimed = 4 * MAPPED_BYTES;
        let mut buffer = GrowingBuffer::new(Some(claimed));
        let mut expected = Vec::new();
        let mut sizes = Vec::new();
        for step in 0..64u8 {
            let piece = vec![step; 16 * 1024];
            buffer.extend_from_slice(&piece).unwrap();
            expected.extend_from_slice(&piece);
            assert_eq!(buffer.bytes.capacity(), 0, "nothing on the heap");
            let size = buffer.mapped.as_ref().map(|mapped| mapped.map.len());
            if sizes.last() != Some(&size) {
                sizes.push(size);
            }
        }
        assert!(sizes.len() <= 4, "{sizes:?}");
        assert_eq!(sizes.last(), Some(&Some(claimed)));
        assert_eq!(buffer.into_bytes(), expected);
    }

    #[test]
    fn more_than_a_mapped_claim_goes_back_to_the_heap() {
        let claimed = MAPPED_BYTES;
        let mut buffer = GrowingBuffer::new(Some(claimed));
        buffer.extend_from_slice(&vec![1; claimed]).unwrap();
        assert!(buffer.mapped.is_some());
        buffer.extend_from_slice(&[2; 10]).unwrap();
        assert!(buffer.mapped.is_none());
        let bytes = buffer.into_bytes();
        assert_eq!(bytes.len(), claimed + 10);
        assert_eq!(&bytes[claimed..], &[2; 10]);
    }

    #[test]
    fn spare_room_stops_at_the_ceiling() {
        let mut buffer = GrowingBuffer::new(Some(1 << 30));
        let vec = buffer.spare(1 << 20, 100).unwrap();
        assert!((100..=FIRST_RESERVATION).contains(&vec.capacity()));
        vec.resize(100, 0);
        let capacity = vec.capacity();
        assert_eq!(buffer.spare(1 << 20, 100).unwrap().capacity(), capacity);
    }
}

//! Classification of received batches (WIRE_PROTOCOL §7).

use arrow_array::RecordBatch;

use crate::log::{ErrorInfo, Level, LogRecord};
use crate::metadata::{self, Metadata};

/// What a received batch means to the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchKind {
    /// Application data (including zero-row void results and stream ends).
    Data,
    /// A client-directed log message.
    Log(LogRecord),
    /// A server error; the call has failed.
    Error(ErrorInfo),
    /// A pointer to an externalized batch at this URL.
    ExternalPointer(String),
    /// A pointer into the shared-memory segment.
    ShmPointer,
    /// A continuation batch carrying a sealed stream state token.
    StateToken,
}

/// Classifies `batch` by its row count and custom metadata.
///
/// Log keys win over pointer keys: a zero-row batch carrying both is a log.
pub fn classify(batch: &RecordBatch, md: &Metadata) -> BatchKind {
    if md.is_empty() || batch.num_rows() > 0 {
        return BatchKind::Data;
    }
    if let Some(record) = LogRecord::from_metadata(md) {
        return if record.level == Level::Exception {
            BatchKind::Error(ErrorInfo::from_log_record(&record))
        } else {
            BatchKind::Log(record)
        };
    }
    if let Some(url) = md.get(metadata::LOCATION) {
        return BatchKind::ExternalPointer(url.to_owned());
    }
    if md.contains(metadata::SHM_OFFSET) {
        return BatchKind::ShmPointer;
    }
    if md.contains(metadata::STREAM_STATE) {
        return BatchKind::StateToken;
    }
    BatchKind::Data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::empty_schema;
    use crate::log::empty_batch;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn zero_rows() -> RecordBatch {
        empty_batch(&empty_schema())
    }

    #[test]
    fn rows_make_data_whatever_the_metadata() {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let md = LogRecord::new(Level::Info, "x").to_metadata();
        assert_eq!(classify(&batch, &md), BatchKind::Data);
    }

    #[test]
    fn zero_row_batches_classify_by_metadata() {
        let b = zero_rows();
        assert_eq!(classify(&b, &Metadata::new()), BatchKind::Data);
        let log = LogRecord::new(Level::Warn, "careful");
        assert_eq!(classify(&b, &log.to_metadata()), BatchKind::Log(log));
        let err = ErrorInfo::new("ValueError", "boom");
        match classify(&b, &err.to_log_record().to_metadata()) {
            BatchKind::Error(info) => assert_eq!(info.error_type, "ValueError"),
            other => panic!("expected error, got {other:?}"),
        }
        let ptr = Metadata::new().with(metadata::LOCATION, "https://x/y");
        assert_eq!(
            classify(&b, &ptr),
            BatchKind::ExternalPointer("https://x/y".into())
        );
        let shm = Metadata::new().with(metadata::SHM_OFFSET, "65536");
        assert_eq!(classify(&b, &shm), BatchKind::ShmPointer);
        let state = Metadata::new().with(metadata::STREAM_STATE, "AAAA");
        assert_eq!(classify(&b, &state), BatchKind::StateToken);
        let other = Metadata::new().with("user.key", "v");
        assert_eq!(classify(&b, &other), BatchKind::Data);
    }

    #[test]
    fn log_keys_take_priority_over_pointer_keys() {
        let md = LogRecord::new(Level::Info, "x")
            .to_metadata()
            .with(metadata::SHM_OFFSET, "1");
        assert!(matches!(classify(&zero_rows(), &md), BatchKind::Log(_)));
    }
}

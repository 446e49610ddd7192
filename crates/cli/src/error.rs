use vgirpc_client::ClientError;

/// Why a command failed; each variant maps to an exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The command line was wrong (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The call itself failed: the server's error or a broken connection.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading input or writing output failed.
    #[error("{context}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// An input file or output batch could not be encoded or decoded.
    #[error("{context}")]
    Arrow {
        /// What was being converted.
        context: String,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl CliError {
    /// Exit status: 2 for command-line mistakes, 1 for everything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| CliError::Io { context, source }
    }

    pub(crate) fn arrow<E: std::error::Error + Send + Sync + 'static>(
        context: impl Into<String>,
    ) -> impl FnOnce(E) -> Self {
        let context = context.into();
        move |source| CliError::Arrow {
            context,
            source: Box::new(source),
        }
    }

    /// The error and its causes on one line, `outer: inner: ...`.
    pub(crate) fn one_line(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        // `transparent` hands the client error's own source chain through.
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.ends_with(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text.replace('\n', " ")
    }
}

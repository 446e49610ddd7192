//! The connector under the HTTP client: `vgirpc-fetch`'s one TLS setup
//! (plain TCP for `http://`; rustls for `https://` with the system's
//! roots plus any CA the options add and a client certificate when
//! given; HTTP/2 offered by ALPN), its errors in the client's terms.

use vgirpc_fetch::{FetchConfig, FetchError, Fetcher, Outgoing};

use super::HttpOptions;
use crate::ClientError;

pub(super) use vgirpc_fetch::Connector;

fn config_error(error: FetchError) -> ClientError {
    ClientError::Config(error.to_string())
}

/// The connector for a client of an `https` (or plain) server with
/// `options`. The TLS setup (reading the system's roots) is skipped for
/// plain `http://`.
pub(super) fn connector(https: bool, options: &HttpOptions) -> Result<Connector, ClientError> {
    options.tls.connector(https).map_err(config_error)
}

/// The fetcher of externalized batches and uploads, trusting what the
/// connection to the server trusts.
pub(super) fn fetcher(options: &HttpOptions) -> Result<Fetcher, ClientError> {
    let outgoing = Outgoing::new(&options.tls).map_err(config_error)?;
    let config: FetchConfig = options.fetch.clone();
    Ok(Fetcher::new(config, outgoing))
}

//! The JSON Web Key Set a [`JwtAuthenticator`](super::JwtAuthenticator)
//! checks signatures against, and the thread that keeps it fresh.
//!
//! Authentication runs on the server's async threads and must not wait on
//! the network, so the keys live in memory behind a lock held only long
//! enough to clone an `Arc`. A key set at a URL is fetched by a thread of
//! its own (it needs no tokio runtime, so the authenticator can be built
//! before one exists): once at start, again every refresh interval, and
//! sooner when a token names a key id the set does not hold — at most once
//! per minimum interval, so tokens with made-up key ids cannot turn the
//! server into a load generator against the identity provider. The request
//! that revealed the unknown key id is refused; once the refreshed set
//! holds its key, the client's next attempt goes through.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::HttpError;
use crate::outgoing;

/// The largest JWKS or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// Where a [`JwtConfig`](super::JwtConfig) finds its signing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_uri` from `{first issuer}/.well-known/openid-configuration`
    /// (OpenID Connect discovery), then as [`JwksSource::Url`].
    Discover,
    /// A JWKS document at a URL, fetched at start and refreshed.
    Url(String),
    /// A JWKS document in a file, read once at start.
    File(PathBuf),
    /// The JWKS document itself.
    Json(String),
}

impl JwksSource {
    /// An `http://` or `https://` URL, or else a file path.
    pub fn parse(spec: &str) -> Self {
        if spec.starts_with("http://") || spec.starts_with("https://") {
            Self::Url(spec.to_owned())
        } else {
            Self::File(PathBuf::from(spec))
        }
    }
}

/// One verification key of the set.
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    /// The algorithm the set pins the key to, if it does.
    pub(crate) alg: Option<String>,
    pub(crate) decoding: DecodingKey,
}

/// The usable keys of one JWKS document.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<Key>,
}

impl KeySet {
    /// Reads a JWKS document. Keys for encryption, symmetric keys (a JWKS
    /// is public; a shared secret in it would let anyone mint tokens) and
    /// keys of unknown types are left out rather than failing the set.
    pub(crate) fn parse(document: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let entries = value
            .get("keys")
            .and_then(|keys| keys.as_array())
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut keys = Vec::new();
        for entry in entries {
            let jwk: Jwk = match serde_json::from_value(entry.clone()) {
                Ok(jwk) => jwk,
                Err(err) => {
                    tracing::debug!(%err, "skipping a JWKS entry that is not a JWK");
                    continue;
                }
            };
            let signing = matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            );
            let public = matches!(
                jwk.algorithm,
                AlgorithmParameters::RSA(_)
                    | AlgorithmParameters::EllipticCurve(_)
                    | AlgorithmParameters::OctetKeyPair(_)
            );
            if !signing || !public {
                continue;
            }
            match DecodingKey::from_jwk(&jwk) {
                Ok(decoding) => keys.push(Key {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk.common.key_algorithm.map(|alg| alg.to_string()),
                    decoding,
                }),
                Err(err) => {
                    tracing::debug!(%err, kid = ?jwk.common.key_id, "skipping an unusable JWK")
                }
            }
        }
        if keys.is_empty() {
            return Err("the JWKS holds no public signing key".into());
        }
        Ok(Self { keys })
    }

    /// Whether some key has id `kid`.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The keys a token signed with `alg` (named `name`) under key id
    /// `kid` may verify against: the key of that id, or without an id every
    /// key of the algorithm's family; never one pinned to another algorithm.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |key| {
            kid.is_none_or(|kid| key.kid.as_deref() == Some(kid))
                && key.decoding.family() == alg.family()
                && key.alg.as_deref().is_none_or(|pinned| pinned == name)
        })
    }
}

/// How often a fetched key set is refreshed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refresh {
    pub(crate) every: Duration,
    pub(crate) at_most_every: Duration,
}

/// The current key set, and the way to ask for a fresher one.
pub(crate) struct KeyStore {
    keys: Arc<RwLock<Arc<KeySet>>>,
    /// Wakes the refresh thread; absent for sets that cannot change. The
    /// thread ends when this is dropped.
    wake: Option<SyncSender<()>>,
}

impl KeyStore {
    /// Loads the key set from `source`, blocking until the first one is in
    /// hand. `issuer` is where [`JwksSource::Discover`] looks.
    pub(crate) fn load(
        source: &JwksSource,
        issuer: &str,
        refresh: Refresh,
    ) -> Result<Self, HttpError> {
        let fixed = |set: KeySet| Self {
            keys: Arc::new(RwLock::new(Arc::new(set))),
            wake: None,
        };
        let location = match source {
            JwksSource::Json(json) => {
                return KeySet::parse(json.as_bytes())
                    .map(fixed)
                    .map_err(HttpError::Config);
            }
            JwksSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    HttpError::Config(format!("cannot read the JWKS {}: {e}", path.display()))
                })?;
                return KeySet::parse(&bytes)
                    .map(fixed)
                    .map_err(|e| HttpError::Config(format!("{}: {e}", path.display())));
            }
            JwksSource::Url(url) => Location::Jwks(url.clone()),
            JwksSource::Discover => Location::Issuer(issuer.to_owned()),
        };
        let keys = Arc::new(RwLock::new(Arc::new(KeySet::default())));
        let (wake, wakes) = mpsc::sync_channel(1);
        let (ready, first) = mpsc::channel();
        let shared = keys.clone();
        std::thread::Builder::new()
            .name("vgirpc-jwks".into())
            .spawn(move || refresh_loop(location, shared, wakes, ready, refresh))?;
        match first.recv() {
            Ok(Ok(())) => Ok(Self {
                keys,
                wake: Some(wake),
            }),
            Ok(Err(reason)) => Err(HttpError::Config(format!("cannot load the JWKS: {reason}"))),
            Err(_) => Err(HttpError::Config("the JWKS thread ended".into())),
        }
    }

    /// The key set as it is now.
    pub(crate) fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Asks for the set to be fetched again soon; never waits.
    pub(crate) fn request_refresh(&self) {
        if let Some(wake) = &self.wake {
            // Full means a refresh is already asked for.
            match wake.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::warn!("the JWKS refresh thread has ended; keys stay as they are");
                }
            }
        }
    }

    /// Whether the set can change after start.
    pub(crate) fn refreshes(&self) -> bool {
        self.wake.is_some()
    }
}

/// Where the refresh thread fetches from.
enum Location {
    Jwks(String),
    /// Not yet resolved through discovery.
    Issuer(String),
}

fn refresh_loop(
    mut location: Location,
    keys: Arc<RwLock<Arc<KeySet>>>,
    wakes: mpsc::Receiver<()>,
    ready: mpsc::Sender<Result<(), String>>,
    refresh: Refresh,
) {
    let first = fetch(&mut location).map(|set| store(&keys, set));
    let failed = first.is_err();
    // The constructor is waiting on this; a dropped receiver cannot happen
    // before it has read it.
    let _ = ready.send(first);
    if failed {
        return;
    }
    let mut fetched_at = Instant::now();
    loop {
        match wakes.recv_timeout(refresh.every.saturating_sub(fetched_at.elapsed())) {
            Ok(()) => {
                let allowed_at = fetched_at + refresh.at_most_every;
                while Instant::now() < allowed_at {
                    if let Err(RecvTimeoutError::Disconnected) =
                        wakes.recv_timeout(allowed_at - Instant::now())
                    {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        match fetch(&mut location) {
            Ok(set) => {
                store(&keys, set);
                tracing::debug!("JWKS refreshed");
            }
            Err(reason) => tracing::warn!(%reason, "JWKS refresh failed; keeping the keys in hand"),
        }
        fetched_at = Instant::now();
        // Asked for while fetching: this fetch has answered them.
        while wakes.try_recv().is_ok() {}
    }
}

fn store(keys: &RwLock<Arc<KeySet>>, set: KeySet) {
    *keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
}

fn fetch(location: &mut Location) -> Result<KeySet, String> {
    let url = match location {
        Location::Jwks(url) => url.clone(),
        Location::Issuer(issuer) => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            );
            let document: serde_json::Value =
                serde_json::from_slice(&get(&url)?).map_err(|e| format!("{url}: not JSON: {e}"))?;
            let jwks_uri = document
                .get("jwks_uri")
                .and_then(|uri| uri.as_str())
                .ok_or_else(|| format!("{url} names no jwks_uri"))?
                .to_owned();
            *location = Location::Jwks(jwks_uri.clone());
            jwks_uri
        }
    };
    KeySet::parse(&get(&url)?).map_err(|e| format!("{url}: {e}"))
}

fn get(url: &str) -> Result<Bytes, String> {
    let reply = outgoing::send(
        Method::GET,
        url,
        &[("accept", "application/json")],
        Bytes::new(),
        MAX_DOCUMENT_BYTES,
    )
    .map_err(|e| e.to_string())?;
    if reply.status != StatusCode::OK {
        return Err(format!("{url} answered {}", reply.status));
    }
    Ok(reply.body)
}

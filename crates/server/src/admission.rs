//! Admission: what a request must pass before the server reads its body.
//!
//! Every request but the health probes goes through [`guard`], one axum
//! middleware in front of both protocols (the gRPC services are served as an
//! axum router too). It
//!
//! 1. authenticates the client ([`crate::auth`]);
//! 2. refuses a body declared larger than the endpoint's limit (413), and an
//!    inference or key registration while the queue for inference slots is
//!    full (503);
//! 3. counts the request against its client's quota of requests in flight
//!    (429);
//! 4. reserves the body's size (declared, else the endpoint's limit) from
//!    the server's budget of buffered bytes (503 when spent),
//!
//! all from the headers, so that refused bodies are never read and the
//! bodies the server holds at once never exceed the budget. The admission is
//! released when the response is ready.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Tenant;
use crate::error::{Result, ServerError};
use crate::AppState;

/// What a request asks for, as far as admission cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// Liveness and readiness: open to anyone, never counted.
    Health,
    /// Metadata, keyparams, metrics: authenticated, small.
    Describe,
    /// An inference (body up to `max_body_bytes`).
    Inference,
    /// An evaluation-key registration (body up to `max_key_bytes`).
    KeyRegistration,
    /// Whether a key id is registered (loads the keys).
    KeyStatus,
}

impl RequestKind {
    /// The kind of an HTTP request.
    pub fn of_http(method: &Method, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if path.starts_with("/v2/health/") {
            Self::Health
        } else if *method == Method::POST && path.ends_with("/infer") {
            Self::Inference
        } else if *method == Method::POST && path.ends_with("/keys") {
            Self::KeyRegistration
        } else if path.rsplit('/').nth(1) == Some("keys") {
            Self::KeyStatus
        } else {
            Self::Describe
        }
    }

    /// The kind of a gRPC call (its path is `/package.Service/Method`).
    pub fn of_grpc(path: &str) -> Self {
        match path.rsplit('/').next().unwrap_or("") {
            "ServerLive" | "ServerReady" => Self::Health,
            "ModelInfer" => Self::Inference,
            "RegisterKeys" => Self::KeyRegistration,
            "KeyStatus" => Self::KeyStatus,
            _ => Self::Describe,
        }
    }

    /// The largest body this kind of request may have.
    fn body_limit(self, config: &crate::Config) -> usize {
        match self {
            Self::KeyRegistration => config.max_key_bytes,
            _ => config.max_body_bytes,
        }
    }

    /// Whether it waits for an inference slot.
    fn queues(self) -> bool {
        matches!(self, Self::Inference | Self::KeyRegistration)
    }
}

/// Which protocol the middleware guards: errors are answered in its form.
#[derive(Clone, Copy, Debug)]
pub enum Wire {
    /// HTTP/REST: status code and JSON.
    Http,
    /// gRPC: a status in the trailers.
    Grpc,
}

impl Wire {
    fn kind(self, request: &Request) -> RequestKind {
        match self {
            Self::Http => RequestKind::of_http(request.method(), request.uri().path()),
            Self::Grpc => RequestKind::of_grpc(request.uri().path()),
        }
    }

    fn refuse(self, error: ServerError) -> Response {
        match self {
            Self::Http => error.into_response(),
            Self::Grpc => tonic::Status::from(error).into_http(),
        }
    }
}

/// The middleware in front of both protocols (see the module's text).
pub async fn guard(
    State((state, wire)): State<(Arc<AppState>, Wire)>,
    mut request: Request,
    next: Next,
) -> Response {
    let kind = wire.kind(&request);
    if kind == RequestKind::Health {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let admitted = state
        .config
        .authentication
        .authenticate(authorization)
        .and_then(|tenant| {
            let admission = admit(&state, &tenant, kind, request.body().size_hint())?;
            Ok((tenant, admission))
        });
    match admitted {
        Ok((tenant, admission)) => {
            request.extensions_mut().insert(tenant);
            let response = next.run(request).await;
            drop(admission);
            response
        }
        Err(e) => {
            tracing::info!(kind = ?kind, error = %e, "request refused at admission");
            state.metrics.record_refusal(&e);
            wire.refuse(e)
        }
    }
}

/// A request let in: its place in its client's quota and its bytes in the
/// server's budget, both given back when dropped.
pub struct Admission {
    _bytes: Option<OwnedSemaphorePermit>,
    _in_flight: InFlight,
}

/// Lets a request in or says why not (see the module's text).
pub fn admit(
    state: &Arc<AppState>,
    tenant: &Tenant,
    kind: RequestKind,
    body: http_body::SizeHint,
) -> Result<Admission> {
    let limit = kind.body_limit(&state.config);
    if body.lower() > limit as u64 {
        return Err(ServerError::TooLarge(limit));
    }
    if kind.queues() {
        crate::service::check_queue(state)?;
    }
    let in_flight = state.tenants.enter(tenant)?;
    // The body's exact size when declared (Content-Length, or an empty
    // body), else as much as the endpoint allows.
    let reserved = body.exact().unwrap_or(limit as u64);
    let bytes = if reserved == 0 {
        None
    } else {
        let kib = u32::try_from(reserved.div_ceil(1024)).unwrap_or(u32::MAX);
        Some(
            state
                .body_budget
                .clone()
                .try_acquire_many_owned(kib)
                .map_err(|_| ServerError::Busy(format!(
                    "the request bodies being received or waiting already fill the server's budget of {} MiB",
                    state.config.max_buffered_bytes >> 20
                )))?,
        )
    };
    Ok(Admission {
        _bytes: bytes,
        _in_flight: in_flight,
    })
}

/// The permits of a budget of `bytes` bytes (in KiB).
pub fn body_budget(bytes: usize) -> Arc<Semaphore> {
    let kib = (bytes / 1024).min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(kib))
}

/// Per-client counts: requests in flight and key sets registered.
pub struct Tenants {
    requests_per_client: usize,
    keys_per_client: usize,
    in_flight: Arc<Mutex<HashMap<Tenant, usize>>>,
    keys: Mutex<HashMap<Tenant, HashSet<String>>>,
}

/// A request counted in flight for its client until dropped.
pub struct InFlight {
    tenant: Tenant,
    counts: Arc<Mutex<HashMap<Tenant, usize>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

impl Tenants {
    /// Quotas: requests in flight and key sets registered, per client.
    pub fn new(requests_per_client: usize, keys_per_client: usize) -> Self {
        Self {
            requests_per_client,
            keys_per_client,
            in_flight: Arc::default(),
            keys: Mutex::default(),
        }
    }

    /// Counts a request of `tenant` in flight, or refuses it past the quota.
    pub fn enter(&self, tenant: &Tenant) -> Result<InFlight> {
        let mut counts = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(tenant.clone()).or_default();
        if *n >= self.requests_per_client {
            return Err(ServerError::ClientQuota(format!(
                "{tenant} already has {n} requests in flight, its quota (--requests-per-client); retry when one ends"
            )));
        }
        *n += 1;
        Ok(InFlight {
            tenant: tenant.clone(),
            counts: self.in_flight.clone(),
        })
    }

    /// Requests of `tenant` in flight now.
    pub fn in_flight(&self, tenant: &Tenant) -> usize {
        let counts = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(tenant).copied().unwrap_or(0)
    }

    /// Reserves a place for the key set `stored_id` among `tenant`'s
    /// registrations (one it holds already takes none); the place is given
    /// back unless [`KeyPlace::keep`] is called once the keys are stored.
    pub fn reserve_key<'a>(&'a self, tenant: &Tenant, stored_id: &str) -> Result<KeyPlace<'a>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let held = keys.entry(tenant.clone()).or_default();
        if held.contains(stored_id) {
            return Ok(KeyPlace {
                tenants: self,
                tenant: tenant.clone(),
                stored_id: None,
            });
        }
        if held.len() >= self.keys_per_client {
            return Err(ServerError::ClientQuota(format!(
                "{tenant} has registered {} key sets, its quota (--keys-per-client) for this server's run",
                held.len()
            )));
        }
        held.insert(stored_id.to_string());
        Ok(KeyPlace {
            tenants: self,
            tenant: tenant.clone(),
            stored_id: Some(stored_id.to_string()),
        })
    }
}

/// A key set's reserved place in its client's quota.
pub struct KeyPlace<'a> {
    tenants: &'a Tenants,
    tenant: Tenant,
    /// Set while the place is new and not yet kept.
    stored_id: Option<String>,
}

impl KeyPlace<'_> {
    /// The keys are stored: the place stays taken.
    pub fn keep(mut self) {
        self.stored_id = None;
    }
}

impl Drop for KeyPlace<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.stored_id.take() {
            let mut keys = self.tenants.keys.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(held) = keys.get_mut(&self.tenant) {
                held.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_both_protocols() {
        use RequestKind::*;
        for (method, path, kind) in [
            (Method::GET, "/v2/health/ready", Health),
            (Method::GET, "/v2/models/m", Describe),
            (Method::GET, "/v2/models/m/keyparams", Describe),
            (Method::GET, "/metrics", Describe),
            (Method::POST, "/v2/models/m/infer", Inference),
            (Method::POST, "/v2/models/m/versions/1/infer", Inference),
            (Method::POST, "/v2/models/m/keys", KeyRegistration),
            (Method::GET, "/v2/models/m/keys/abc", KeyStatus),
        ] {
            assert_eq!(RequestKind::of_http(&method, path), kind, "{method} {path}");
        }
        for (path, kind) in [
            ("/inference.GRPCInferenceService/ServerLive", Health),
            ("/inference.GRPCInferenceService/ModelMetadata", Describe),
            ("/inference.GRPCInferenceService/ModelInfer", Inference),
            ("/heman.KeyService/RegisterKeys", KeyRegistration),
            ("/heman.KeyService/KeyStatus", KeyStatus),
            ("/heman.KeyService/GetKeyParams", Describe),
        ] {
            assert_eq!(RequestKind::of_grpc(path), kind, "{path}");
        }
    }

    #[test]
    fn quotas_count_per_client_and_give_back() {
        let tenants = Tenants::new(2, 1);
        let (alice, bob) = (Tenant::named("alice"), Tenant::named("bob"));
        let a1 = tenants.enter(&alice).unwrap();
        let _a2 = tenants.enter(&alice).unwrap();
        let e = tenants.enter(&alice).err().unwrap();
        assert!(matches!(e, ServerError::ClientQuota(_)), "{e}");
        let _b = tenants.enter(&bob).unwrap();
        drop(a1);
        assert_eq!(tenants.in_flight(&alice), 1);
        let _a3 = tenants.enter(&alice).unwrap();

        // A failed registration gives its place back; a kept one holds it,
        // and registering the same keys again takes no second place.
        drop(tenants.reserve_key(&alice, "k1").unwrap());
        tenants.reserve_key(&alice, "k2").unwrap().keep();
        tenants.reserve_key(&alice, "k2").unwrap().keep();
        let e = tenants.reserve_key(&alice, "k3").err().unwrap();
        assert!(e.to_string().contains("--keys-per-client"), "{e}");
        tenants.reserve_key(&bob, "k3").unwrap().keep();
    }
}

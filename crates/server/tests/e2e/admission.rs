//! Who may ask and what is read: bearer tokens separate clients (one cannot
//! use or probe another's keys, over HTTP or gRPC), requests are refused
//! from their headers before their bodies are read (too large, over the
//! buffered-bytes budget, over the client's quota), and an open server
//! will not listen beyond loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use heman_backend::{registry, Silent};
use heman_server::client::Client;
use heman_server::grpc::heman::key_service_client::KeyServiceClient;
use heman_server::grpc::heman::KeyStatusRequest;
use heman_server::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use heman_server::grpc::inference::{ModelMetadataRequest, ServerLiveRequest};
use heman_server::{Authentication, Config, Server, Tokens};
use tokio::io::AsyncWriteExt;
use tonic::Code;

use crate::common::{config, digit, fixture, head_only, infer_head, Running};
use crate::grpc::request;

const ALICE: &str = "a1ce0000000000000000000000000000000000000000000000000000000000aa";
const BOB: &str = "b0b00000000000000000000000000000000000000000000000000000000000bb";

fn tokens() -> Authentication {
    let text = format!("alice {ALICE}\nbob {BOB}\n");
    Authentication::Tokens(Arc::new(Tokens::parse(&text).unwrap()))
}

/// A server over the shared digits repository, configured by `configure`.
async fn start(configure: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Running) {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut cfg = config(&fx.repo, &work.path().join("keystore"));
    configure(&mut cfg);
    (work, Running::start(cfg).await)
}

/// `metadata` with `token` as a gRPC bearer token.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_keep_clients_apart_over_both_protocols() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let (_work, server) = start(|cfg| cfg.authentication = tokens()).await;
    let http = reqwest::Client::new();

    // Health stays open; everything else wants a token.
    let ready = http
        .get(server.url("/v2/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    for path in [
        "/v2/models/digits/keyparams",
        "/v2/models/digits",
        "/metrics",
    ] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer", "{path}");
    }
    let anonymous = Client::new(&server.http.to_string()).unwrap();
    let e = anonymous.keyparams("digits").await.unwrap_err();
    assert!(e.to_string().contains("bearer token"), "{e}");
    let stranger = anonymous.clone().with_token(&"0".repeat(64));
    let e = stranger.keyparams("digits").await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");

    // Alice's keys are hers: Bob can neither see nor use them.
    let alice = anonymous.clone().with_token(ALICE);
    let bob = anonymous.clone().with_token(BOB);
    let key_id = alice
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    assert!(alice.key_registered("digits", &key_id).await.unwrap());
    assert!(!bob.key_registered("digits", &key_id).await.unwrap());
    let x = digit(3);
    let e = bob
        .infer("digits", &key_id, &fx.encrypt(&x))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown key_id"), "{e}");
    let out = alice
        .infer("digits", &key_id, &fx.encrypt(&x))
        .await
        .unwrap();
    fx.assert_matches(&out, &x, "alice over HTTP");
    // Bob registering the same bytes gets his own entry: his queries do not
    // spend Alice's budget.
    let bobs = bob
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    assert_eq!(bobs, key_id, "the id is the keys' digest for every client");
    bob.infer("digits", &key_id, &fx.encrypt(&x)).await.unwrap();
    let scoped = |t: &str| heman_server::Tenant::named(t).scoped_key_id(&key_id);
    assert_eq!(server.state.ledger.answered(&scoped("alice")), 1);
    assert_eq!(server.state.ledger.answered(&scoped("bob")), 1);

    // gRPC: the same tokens in the `authorization` metadata.
    let grpc_url = format!("http://{}", server.grpc.unwrap());
    let mut inference = GrpcInferenceServiceClient::connect(grpc_url.clone())
        .await
        .unwrap()
        .max_decoding_message_size(usize::MAX);
    let live = inference.server_live(ServerLiveRequest {}).await.unwrap();
    assert!(live.into_inner().live, "liveness is open");
    let metadata = ModelMetadataRequest {
        name: "digits".into(),
        version: String::new(),
    };
    let e = inference
        .model_metadata(metadata.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    inference
        .model_metadata(with_token(metadata, BOB))
        .await
        .unwrap();
    let mut keys = KeyServiceClient::connect(grpc_url).await.unwrap();
    let status = |token| {
        with_token(
            KeyStatusRequest {
                model_name: "digits".into(),
                key_id: key_id.clone(),
            },
            token,
        )
    };
    keys.key_status(status(ALICE)).await.unwrap();
    let stranger_token = "c".repeat(64);
    let e = keys.key_status(status(&stranger_token)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let y = digit(8);
    let e = inference
        .model_infer(request("digits", &key_id, &fx.encrypt(&y)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let response = inference
        .model_infer(with_token(
            request("digits", &key_id, &fx.encrypt(&y)),
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner();
    let elements =
        heman_server::binary::decode_bytes_elements(&response.raw_output_contents[0], 1).unwrap();
    fx.assert_matches(&elements[0], &y, "alice over gRPC");
    server.stop().await;
}

/// A connection that declared a body and sends it slowly: it holds its
/// admission until dropped.
async fn hold(addr: std::net::SocketAddr, head: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{").await.unwrap();
    stream
}

/// Waits until `tenant` has `n` requests in flight.
async fn until_in_flight(server: &Running, tenant: &heman_server::Tenant, n: usize) {
    for _ in 0..500 {
        if server.state.tenants.in_flight(tenant) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{tenant} never had {n} requests in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_refused_from_their_headers_before_they_are_read() {
    let (_work, server) = start(|cfg| {
        cfg.authentication = tokens();
        cfg.max_body_bytes = 1 << 20;
        cfg.max_key_bytes = 1 << 20;
        cfg.max_buffered_bytes = 2 << 20;
        cfg.requests_per_client = 3;
    })
    .await;
    let addr = server.http;
    // No token: refused though it declares a gigabyte.
    let answer = head_only(addr, &infer_head(1 << 30, None)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // Larger than the inference limit.
    let answer = head_only(addr, &infer_head(100 << 20, Some(ALICE))).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Two bodies of 1 MiB being received fill the 2 MiB budget: a third is
    // refused at once, whoever sends it, and admitted again once one ends.
    let first = hold(addr, &infer_head(1 << 20, Some(ALICE))).await;
    let second = hold(addr, &infer_head(1 << 20, Some(BOB))).await;
    until_in_flight(&server, &heman_server::Tenant::named("alice"), 1).await;
    until_in_flight(&server, &heman_server::Tenant::named("bob"), 1).await;
    let answer = head_only(addr, &infer_head(1 << 20, Some(ALICE))).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("budget"), "{answer}");
    drop(first);
    until_in_flight(&server, &heman_server::Tenant::named("alice"), 0).await;
    let third = hold(addr, &infer_head(1 << 20, Some(ALICE))).await;
    until_in_flight(&server, &heman_server::Tenant::named("alice"), 1).await;
    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(BOB)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "heman_admission_refusals_total{reason=\"unauthenticated\"} 1",
        "heman_admission_refusals_total{reason=\"too_large\"} 1",
        "heman_admission_refusals_total{reason=\"busy\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    // Held connections closed: their requests end, the server can stop.
    drop((second, third));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_has_its_own_quotas() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let (_work, server) = start(|cfg| {
        cfg.authentication = tokens();
        cfg.requests_per_client = 2;
        cfg.keys_per_client = 1;
    })
    .await;
    let addr = server.http;
    let alice = heman_server::Tenant::named("alice");
    // Requests in flight: Alice's third waits for none of hers to end; Bob
    // is not held back by her.
    let a1 = hold(addr, &infer_head(1000, Some(ALICE))).await;
    let a2 = hold(addr, &infer_head(1000, Some(ALICE))).await;
    until_in_flight(&server, &alice, 2).await;
    let answer = head_only(addr, &infer_head(1000, Some(ALICE))).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("--requests-per-client"), "{answer}");
    let bob = Client::new(&addr.to_string()).unwrap().with_token(BOB);
    bob.keyparams("digits").await.unwrap();

    // Key sets registered: one each; the same keys again take no new place.
    let keyparams = bob.keyparams("digits").await.unwrap();
    let other_keys = tokio::task::spawn_blocking(move || {
        let backend = registry::for_keyparams(keyparams.as_bytes(), Path::new("kp")).unwrap();
        backend
            .keygen(keyparams.as_bytes(), Path::new("kp"), &Silent)
            .unwrap()
            .evaluation
    })
    .await
    .unwrap();
    bob.register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    bob.register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    let e = bob
        .register_keys("digits", other_keys.clone())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(429), "{e}");
    assert!(e.to_string().contains("--keys-per-client"), "{e}");
    drop((a1, a2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_server_listens_on_loopback_only() {
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let exposed = |configure: &dyn Fn(&mut Config)| {
        let mut cfg = config(&fx.repo, &work.path().join("keystore"));
        cfg.http_addr = "0.0.0.0:0".parse().unwrap();
        configure(&mut cfg);
        cfg
    };
    let e = Server::bind(exposed(&|_| {})).await.err().unwrap();
    assert!(e.to_string().contains("--tokens"), "{e}");
    // gRPC counts too.
    let mut cfg = config(&fx.repo, &work.path().join("keystore"));
    cfg.grpc_addr = Some("0.0.0.0:0".parse().unwrap());
    assert!(Server::bind(cfg).await.is_err());
    // With tokens, or when told it is guarded otherwise, it starts.
    Server::bind(exposed(&|c| c.authentication = tokens()))
        .await
        .unwrap();
    Server::bind(exposed(&|c| c.open_beyond_loopback = true))
        .await
        .unwrap();
    // Limits no request could meet are refused too.
    let e = Server::bind(exposed(&|c| {
        c.authentication = tokens();
        c.max_key_bytes = 8 << 30;
    }))
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("--max-buffered-mib"), "{e}");
}

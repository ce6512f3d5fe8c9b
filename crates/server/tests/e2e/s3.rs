//! The S3 key store against a real S3-compatible server (`s3s-fs`, which
//! `.ci/run` installs): two replicas share keys through it, and keys
//! survive both replicas going away. Skipped, visibly, without `s3s-fs`.

use heman_server::{KeyStoreLocation, S3Location};
use heman_testkit::s3::{s3s_fs, S3Server, ACCESS_KEY, MISSING, SECRET_KEY};

use crate::common::{config, digit, fixture, Running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_keys_through_s3() {
    let Some(binary) = s3s_fs() else {
        let note = format!("SKIPPED replicas_share_keys_through_s3: {MISSING}");
        println!("{note}");
        eprintln!("{note}");
        return;
    };
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("s3");
    // s3s-fs maps each bucket to a folder of its root.
    std::fs::create_dir_all(root.join("heman-keys")).unwrap();
    let s3 = S3Server::start(&binary, &root);
    let addr = s3.addr;
    let location = KeyStoreLocation::S3(S3Location {
        bucket: "heman-keys".into(),
        prefix: "replicated/eval".into(),
        endpoint: Some(format!("http://{addr}")),
        region: Some("us-east-1".into()),
        allow_http: true,
        credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
    });
    let replica = |_: usize| {
        let mut cfg = config(&fx.repo, work.path());
        cfg.key_store = location.clone();
        cfg
    };
    let a = Running::start(replica(0)).await;
    let b = Running::start(replica(1)).await;
    let client_a = heman_server::client::Client::new(&a.http.to_string()).unwrap();
    let client_b = heman_server::client::Client::new(&b.http.to_string()).unwrap();

    // Registered on A, in the bucket, usable on B.
    let key_id = client_a
        .register_keys("digits", fx.eval_keys.clone())
        .await
        .unwrap();
    let object = root
        .join("heman-keys/replicated/eval")
        .join(format!("{key_id}.keys"));
    assert_eq!(
        std::fs::read(&object).unwrap(),
        fx.eval_keys,
        "object in the bucket"
    );
    assert!(client_b.key_registered("digits", &key_id).await.unwrap());
    assert!(!client_b
        .key_registered("digits", &"c".repeat(64))
        .await
        .unwrap());
    let input = digit(7);
    let ct = fx.encrypt(&input);
    let out = client_b.infer("digits", &key_id, &ct).await.unwrap();
    fx.assert_matches(&out, &input, "replica B with keys registered on A");
    let e = client_b
        .infer("digits", &"d".repeat(64), &ct)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown key_id"), "{e}");
    a.stop().await;
    b.stop().await;

    // A fresh replica (empty memory) still finds the keys.
    let c = Running::start(replica(2)).await;
    let client_c = heman_server::client::Client::new(&c.http.to_string()).unwrap();
    let out = client_c.infer("digits", &key_id, &ct).await.unwrap();
    fx.assert_matches(&out, &input, "fresh replica");
    c.stop().await;
}

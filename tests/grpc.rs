//! The tonic example service (examples/grpc_service.rs) behind `GrpcAuthLayer` on a real
//! loopback socket, driven by a real tonic client: accepted calls reach the handler with the
//! grant; refusals are gRPC statuses with the challenge as metadata and no body. Then
//! docs/grpc.md's blocks, run as written with the example binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../examples/grpc_service.rs"]
mod service;

use scopekey::revocation::{RevocationList, RevocationTarget, Revoker};
use scopekey::{Issuer, KeySet, ManualClock, SigningKey, TokenRequest, Verifier, VerifierConfig};
use service::{DeleteProjectRequest, GetProjectRequest, ProjectsClient, with_token};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;

const ISS: &str = "https://auth.example";
const AUD: &str = "https://grpc.example";

struct Fixture {
    issuer: Issuer,
    /// The same key, its clock two hours back.
    stale_issuer: Issuer,
    revocations: Arc<RevocationList>,
    addr: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(|verifier| verifier).await
    }

    /// With the verifier `configure` makes of the fixture's.
    async fn start_with(configure: impl FnOnce(Verifier) -> Verifier) -> Self {
        let key = SigningKey::generate().unwrap();
        let keys = KeySet::single(key.public_key().clone());
        let env: scopekey::Environment = "test".parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let stale_issuer = Issuer::new(
            SigningKey::from_paserk(key.to_paserk().as_ref()).unwrap(),
            ISS,
            env.clone(),
        )
        .unwrap()
        .with_clock(ManualClock::at_unix(i64::try_from(now).unwrap() - 2 * 3600));
        let issuer = Issuer::new(key, ISS, env.clone()).unwrap();
        let revocations = Arc::new(RevocationList::new());
        let verifier = Verifier::new(keys, VerifierConfig::new(ISS, AUD, env))
            .unwrap()
            .with_revocations(revocations.clone());
        let verifier = configure(verifier);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            service::serve(listener, Arc::new(verifier), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            issuer,
            stale_issuer,
            revocations,
            addr,
            _shutdown: tx,
        }
    }

    fn token(&self, subject: &str, scopes: &str) -> (String, scopekey::TokenId) {
        let minted = self
            .issuer
            .issue(
                &TokenRequest::new(subject, AUD, scopes.parse().unwrap())
                    .allow_broad()
                    .escalate(),
            )
            .unwrap();
        (
            minted.token().as_str().to_owned(),
            minted.claims().token_id().clone(),
        )
    }

    async fn client(&self) -> ProjectsClient {
        ProjectsClient::connect(self.addr.clone()).await.unwrap()
    }
}

fn get(id: &str) -> GetProjectRequest {
    GetProjectRequest {
        project_id: id.to_owned(),
    }
}

/// The refusal's code and `www-authenticate`, after checking it holds nothing of `token`.
fn refusal(status: &tonic::Status, token: &str) -> (Code, Option<String>) {
    assert!(!status.message().contains(token), "{status:?}");
    for entry in status.metadata().iter() {
        if let tonic::metadata::KeyAndValueRef::Ascii(_, value) = entry {
            assert!(!value.to_str().unwrap().contains(token), "{status:?}");
        }
    }
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status.code(), challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_calls_reach_the_handler_with_the_grant() {
    let f = Fixture::start().await;
    let mut client = f.client().await;
    let (reader, _) = f.token("ci-reader", "projects/42:read");
    let project = client
        .get_project(with_token(get("42"), &reader).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(project.id, "42");
    assert_eq!(project.viewer, "ci-reader");

    let (admin, _) = f.token("ops", "projects:delete");
    let deleted = client
        .delete_project(
            with_token(
                DeleteProjectRequest {
                    project_id: "7".to_owned(),
                },
                &admin,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.deleted_by, "ops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_grpc_statuses() {
    let f = Fixture::start().await;
    let mut client = f.client().await;
    let realm = "Bearer realm=\"scopekey-grpc-example\"";

    // No token: UNAUTHENTICATED with a bare challenge.
    let status = client
        .get_project(tonic::Request::new(get("42")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "bearer token required");
    assert_eq!(
        status.metadata().get("www-authenticate").unwrap(),
        realm,
        "{status:?}"
    );

    // Bad, expired, revoked tokens: UNAUTHENTICATED invalid_token.
    let (reader, _) = f.token("ci-reader", "projects:read");
    // Signed by a key the service does not know.
    let forged = Issuer::new(
        SigningKey::generate().unwrap(),
        ISS,
        "test".parse().unwrap(),
    )
    .unwrap()
    .issue(&TokenRequest::new("forger", AUD, "projects:read".parse().unwrap()).allow_broad())
    .unwrap()
    .token()
    .as_str()
    .to_owned();
    let expired = f
        .stale_issuer
        .issue(
            &TokenRequest::new("old", AUD, "projects:read".parse().unwrap())
                .allow_broad()
                .ttl(Duration::from_secs(600)),
        )
        .unwrap()
        .token()
        .as_str()
        .to_owned();
    let (revoked, revoked_id) = f.token("leaked", "projects:read");
    f.revocations
        .revoke(
            RevocationTarget::Token {
                token_id: revoked_id,
                expires_at: None,
            },
            "test",
            "leaked",
        )
        .unwrap();
    for (token, description) in [
        ("not-a-token", "the token is malformed"),
        (forged.as_str(), "the token signature is not valid here"),
        (expired.as_str(), "the token has expired"),
        (revoked.as_str(), "the token has been revoked"),
    ] {
        let status = client
            .get_project(with_token(get("42"), token).unwrap())
            .await
            .unwrap_err();
        let (code, challenge) = refusal(&status, token);
        assert_eq!(code, Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), description);
        assert_eq!(
            challenge.unwrap(),
            format!("{realm}, error=\"invalid_token\", error_description=\"{description}\"")
        );
    }

    // A token lacking the scope: PERMISSION_DENIED, from the handler, naming the scope.
    let status = client
        .delete_project(
            with_token(
                DeleteProjectRequest {
                    project_id: "42".to_owned(),
                },
                &reader,
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    let (code, challenge) = refusal(&status, &reader);
    assert_eq!(code, Code::PermissionDenied, "{status:?}");
    assert_eq!(
        status.message(),
        "the token does not grant the required scope"
    );
    assert!(
        challenge
            .unwrap()
            .ends_with("error=\"insufficient_scope\", error_description=\"the token does not grant the required scope\", scope=\"projects/42:delete\"")
    );

    // Two authorization entries: INVALID_ARGUMENT, even when both are valid.
    let mut request = with_token(get("42"), &reader).unwrap();
    request
        .metadata_mut()
        .append("authorization", format!("Bearer {reader}").parse().unwrap());
    let status = client.get_project(request).await.unwrap_err();
    let (code, challenge) = refusal(&status, &reader);
    assert_eq!(code, Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "more than one Authorization header");
    assert!(challenge.unwrap().contains("error=\"invalid_request\""));

    // A project id that is not one segment: INVALID_ARGUMENT from the handler, no challenge.
    let status = client
        .get_project(with_token(get("42/comments"), &reader).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refusal(&status, &reader), (Code::InvalidArgument, None));
}

/// An audit sink that is down.
#[derive(Debug)]
struct DownSink;

impl scopekey::audit::AuditSink for DownSink {
    fn record(
        &self,
        _event: &scopekey::audit::AuditEvent,
    ) -> Result<(), scopekey::audit::AuditError> {
        Err(scopekey::audit::AuditError::new("down", "disk full"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_sink_down_is_unavailable() {
    let f = Fixture::start_with(|verifier| verifier.with_audit(Arc::new(DownSink))).await;
    let (reader, _) = f.token("ci-reader", "projects/42:read");
    let status = f
        .client()
        .await
        .get_project(with_token(get("42"), &reader).unwrap())
        .await
        .unwrap_err();
    // Fail closed, no challenge: the token is not at fault.
    assert_eq!(refusal(&status, &reader), (Code::Unavailable, None));
    assert_eq!(status.message(), "authorization is temporarily unavailable");
}

/// The refusal on the wire, through tonic's channel as a plain HTTP/2 service: a
/// trailers-only response (status in the headers) with an empty body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_trailers_only_with_no_body() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let f = Fixture::start().await;
    let channel = tonic::transport::Endpoint::from_shared(f.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let request = tonic::codegen::http::Request::builder()
        .method("POST")
        .uri(format!("{}{}", f.addr, service::GET_PROJECT))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::empty())
        .unwrap();
    let response = channel.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "16");
    assert_eq!(headers["grpc-message"], "bearer token required");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"scopekey-grpc-example\""
    );
    let collected = response.into_body().collect().await.unwrap();
    assert!(collected.trailers().is_none());
    assert!(collected.to_bytes().is_empty());
}

/// The `sh` blocks of `section` (up to the next `## ` heading), in order.
fn blocks(doc: &str, section: &str) -> Vec<String> {
    let body = doc.split(section).nth(1).unwrap();
    let body = body.split("\n## ").next().unwrap();
    body.split("```sh\n")
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap().to_owned())
        .collect()
}

/// target/debug, from this test's own path (target/debug/deps/…).
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A `cargo` on the PATH that runs the example binary already built for
/// `cargo run -q --example grpc_service --` (the test does not start a second cargo).
fn shim_dir(dir: &Path, example: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shim = bin.join("cargo");
    std::fs::write(
        &shim,
        format!(
            "#!/usr/bin/env bash\n[ \"$1 $2 $3 $4 $5\" = \"run -q --example grpc_service --\" ] || {{ echo \"shim: unexpected cargo $*\" >&2; exit 2; }}\nshift 5\nexec {} \"$@\"\n",
            example.display()
        ),
    )
    .unwrap();
    assert!(
        Command::new("chmod")
            .arg("+x")
            .arg(&shim)
            .status()
            .unwrap()
            .success()
    );
    bin
}

#[test]
fn the_grpc_guide_runs_as_written() {
    let doc = include_str!("../docs/grpc.md");
    let mut try_it = blocks(doc, "## Try it");
    let (serve, calls) = (try_it.remove(0), try_it.remove(0));
    let expected = doc
        .split("It prints:\n\n```text\n")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .unwrap();
    let example = build_dir().join("examples/grpc_service");
    if !example.exists() {
        let built = Command::new(env!("CARGO"))
            .args([
                "build",
                "-q",
                "--locked",
                "-p",
                "scopekey-workspace",
                "--example",
                "grpc_service",
            ])
            .status()
            .unwrap();
        assert!(built.success());
    }
    let dir = std::env::temp_dir().join(format!("scopekey-grpc-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!(
        "{}:{}",
        shim_dir(&dir, &example).display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // A free port instead of the documented 50051.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let on_port = |s: &str| s.replace("127.0.0.1:50051", &format!("127.0.0.1:{port}"));
    let mut server = Command::new("bash")
        .arg("-c")
        .arg(format!("exec {}", on_port(&serve)))
        .current_dir(&dir)
        .env("PATH", &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the listening line (the demo tokens are written before it).
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(n > 0, "the example exited: {printed}");
        printed.push_str(&line);
        if line.starts_with("listening on ") {
            break;
        }
    }
    let result = Command::new("bash")
        .arg("-c")
        .arg(on_port(&calls))
        .current_dir(&dir)
        .env("PATH", &path)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(stdout.trim_end(), expected, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

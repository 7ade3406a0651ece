//! A tonic gRPC service protected by scopekey: `GrpcAuthLayer` verifies the token of the
//! `authorization` metadata entry on the way in; each method authorizes its action on the
//! project named in the request message on the way through.
//!
//! ```sh
//! # A self-contained demo: generates a key, writes ready-made tokens to DIR, and serves.
//! cargo run --example grpc_service -- serve --demo target/scopekey-grpc-demo --listen 127.0.0.1:50051
//!
//! # A client (tonic, no grpcurl needed): call a method with a token file.
//! cargo run --example grpc_service -- call --addr http://127.0.0.1:50051 \
//!     --token-file target/scopekey-grpc-demo/reader.token get 42
//! ```
//!
//! Methods of `projects.Projects` and what they need:
//!
//! | method | scope |
//! |---|---|
//! | `GetProject` | `projects/{id}:read` |
//! | `DeleteProject` | `projects/{id}:delete` |
//!
//! The messages are written with `#[derive(prost::Message)]` and the service with tonic's
//! generic `tonic::server::Grpc` and `tonic::client::Grpc`: no `.proto` compilation, no
//! protoc. The equivalent `.proto` is in `docs/grpc.md`. See there for the status table.

use clap::{Parser, Subcommand};
use scopekey::revocation::RevocationList;
use scopekey::{
    Action, Environment, Grant, Issuer, KeySet, Resource, SigningKey, TokenRequest, Verifier,
    VerifierConfig,
};
use scopekey_tower::grpc::{GrpcAuthLayer, status_of};
use scopekey_tower::{AuthState, Realm, Rejection};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TcpIncoming};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

/// The realm every refusal names.
pub(crate) const REALM: &str = "scopekey-grpc-example";
/// Issuer, audience and environment of `--demo` mode.
pub(crate) const DEMO_ISSUER: &str = "https://auth.scopekey.example";
/// See [`DEMO_ISSUER`].
pub(crate) const DEMO_AUDIENCE: &str = "https://grpc.scopekey.example";
/// See [`DEMO_ISSUER`].
pub(crate) const DEMO_ENV: &str = "dev";

/// `projects.GetProjectRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct GetProjectRequest {
    /// The project's id, one resource segment.
    #[prost(string, tag = "1")]
    pub(crate) project_id: String,
}

/// `projects.Project`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Project {
    /// The project's id.
    #[prost(string, tag = "1")]
    pub(crate) id: String,
    /// The project's name.
    #[prost(string, tag = "2")]
    pub(crate) name: String,
    /// The subject of the grant the request was served for.
    #[prost(string, tag = "3")]
    pub(crate) viewer: String,
}

/// `projects.DeleteProjectRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct DeleteProjectRequest {
    /// The project's id, one resource segment.
    #[prost(string, tag = "1")]
    pub(crate) project_id: String,
}

/// `projects.DeleteProjectResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct DeleteProjectResponse {
    /// The subject of the grant that deleted it.
    #[prost(string, tag = "1")]
    pub(crate) deleted_by: String,
}

/// The error of the example's functions.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The full method paths.
pub(crate) const GET_PROJECT: &str = "/projects.Projects/GetProject";
/// See [`GET_PROJECT`].
pub(crate) const DELETE_PROJECT: &str = "/projects.Projects/DeleteProject";

/// The `projects.Projects` service, as tonic-build would generate it, by hand.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProjectsServer;

impl NamedService for ProjectsServer {
    const NAME: &'static str = "projects.Projects";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, Infallible>> + Send>>;

impl tower::Service<http::Request<Body>> for ProjectsServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match request.uri().path() {
            GET_PROJECT => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(tower::service_fn(get_project), request).await)
            }),
            DELETE_PROJECT => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(tower::service_fn(delete_project), request).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// `GetProject`: needs `projects/{id}:read`.
async fn get_project(
    request: tonic::Request<GetProjectRequest>,
) -> Result<tonic::Response<Project>, Status> {
    let id = request.get_ref().project_id.clone();
    let grant = authorize(&request, &id, "read")?;
    Ok(tonic::Response::new(Project {
        name: format!("Project {id}"),
        id,
        viewer: grant.subject().to_owned(),
    }))
}

/// `DeleteProject`: needs `projects/{id}:delete`.
async fn delete_project(
    request: tonic::Request<DeleteProjectRequest>,
) -> Result<tonic::Response<DeleteProjectResponse>, Status> {
    let grant = authorize(&request, &request.get_ref().project_id, "delete")?;
    Ok(tonic::Response::new(DeleteProjectResponse {
        deleted_by: grant.subject().to_owned(),
    }))
}

/// The grant the layer verified, if it allows `action` on `projects/{id}`; the gRPC status
/// answering the refusal otherwise.
fn authorize<'r, T>(
    request: &'r tonic::Request<T>,
    id: &str,
    action: &str,
) -> Result<&'r Grant, Status> {
    let realm = request.extensions().get::<Realm>();
    let refuse = |rejection: Rejection| grpc_status(&rejection, realm);
    // Fail closed: no grant means the layer did not run.
    let grant = request
        .extensions()
        .get::<Grant>()
        .ok_or_else(|| refuse(Rejection::MissingCredentials))?;
    // An id is one segment: it can never add a segment or a wildcard.
    let resource = Resource::from_segments(["projects", id])
        .map_err(|_| refuse(Rejection::InvalidResource))?;
    let action: Action = action.parse().map_err(|_| Status::internal("bad action"))?;
    grant
        .authorize(&resource, &action)
        .map_err(|denied| refuse(Rejection::from_denied(&denied)))?;
    Ok(grant)
}

/// A tonic status for `rejection`, with the RFC 6750 challenge in `www-authenticate` as
/// `GrpcAuthLayer` sends it.
pub(crate) fn grpc_status(rejection: &Rejection, realm: Option<&Realm>) -> Status {
    let status = status_of(rejection);
    let mut metadata = MetadataMap::new();
    let challenge = realm.and_then(|realm| status.challenge(realm));
    if let Some(value) = challenge.and_then(|c| MetadataValue::try_from(c.as_bytes()).ok()) {
        metadata.insert("www-authenticate", value);
    }
    Status::with_metadata(
        Code::from_i32(status.code().as_i32()),
        status.message(),
        metadata,
    )
}

/// The auth state of the service: `verifier`, the example's realm, and the TCP peer from
/// tonic's connection info (for network-limited tokens and the audit trail).
pub(crate) fn auth_state(verifier: Arc<Verifier>) -> Result<AuthState, BoxError> {
    Ok(
        AuthState::new(verifier, Realm::new(REALM)?).client_address_with(|parts| {
            parts
                .extensions
                .get::<TcpConnectInfo>()
                .and_then(TcpConnectInfo::remote_addr)
                .map(|addr| addr.ip())
        }),
    )
}

/// Serves the service on `listener` behind the auth layer until `shutdown` completes: the
/// whole server, for tests and benchmarks.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    verifier: Arc<Verifier>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    tonic::transport::Server::builder()
        .layer(GrpcAuthLayer::new(auth_state(verifier)?))
        .add_service(ProjectsServer)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

/// A client of `projects.Projects` over a tonic channel.
#[derive(Debug, Clone)]
pub(crate) struct ProjectsClient {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl ProjectsClient {
    /// Connects to `addr` (`http://host:port`).
    pub(crate) async fn connect(addr: String) -> Result<Self, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(addr)?
            .connect()
            .await?;
        Ok(Self {
            grpc: tonic::client::Grpc::new(channel),
        })
    }

    /// `GetProject`.
    pub(crate) async fn get_project(
        &mut self,
        request: tonic::Request<GetProjectRequest>,
    ) -> Result<tonic::Response<Project>, Status> {
        self.call(request, GET_PROJECT).await
    }

    /// `DeleteProject`.
    pub(crate) async fn delete_project(
        &mut self,
        request: tonic::Request<DeleteProjectRequest>,
    ) -> Result<tonic::Response<DeleteProjectResponse>, Status> {
        self.call(request, DELETE_PROJECT).await
    }

    async fn call<Req, Res>(
        &mut self,
        request: tonic::Request<Req>,
        path: &'static str,
    ) -> Result<tonic::Response<Res>, Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Res: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static(path);
        self.grpc.unary(request, path, ProstCodec::default()).await
    }
}

/// `request` with `authorization: Bearer <token>`.
pub(crate) fn with_token<T>(message: T, token: &str) -> Result<tonic::Request<T>, BoxError> {
    let mut request = tonic::Request::new(message);
    let mut value: MetadataValue<_> = format!("Bearer {token}").parse()?;
    value.set_sensitive(true);
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[derive(Parser, Debug)]
#[command(about = "A tonic gRPC service protected by scopekey tokens", long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve `projects.Projects`.
    Serve {
        /// Demo mode: generate a key, write its public key and demo tokens to DIR.
        #[arg(long, value_name = "DIR")]
        demo: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
    },
    /// Call a method, with the token read from a file.
    Call {
        /// The server, `http://host:port`.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// A file holding the token.
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// `get` or `delete`.
        method: String,
        /// The project id.
        project: String,
    },
}

/// Writes the demo key and tokens to `dir`; the verifier for them, with an in-memory
/// revocation list.
fn demo(dir: &Path) -> Result<Verifier, BoxError> {
    std::fs::create_dir_all(dir)?;
    let key = SigningKey::generate()?;
    std::fs::write(dir.join("public.paserk"), key.public_key().to_paserk())?;
    let keys = KeySet::single(key.public_key().clone());
    let env: Environment = DEMO_ENV.parse()?;
    let issuer = Issuer::new(key, DEMO_ISSUER, env.clone())?;
    println!("demo: issuer {DEMO_ISSUER}, audience {DEMO_AUDIENCE}, env {DEMO_ENV}");
    for (name, scopes) in [("reader", "projects:read"), ("admin", "projects:delete")] {
        let minted = issuer.issue(
            &TokenRequest::new(format!("demo-{name}"), DEMO_AUDIENCE, scopes.parse()?)
                .ttl(Duration::from_secs(3600))
                .allow_broad()
                .escalate(),
        )?;
        let path = dir.join(format!("{name}.token"));
        std::fs::write(&path, minted.token().as_str())?;
        println!("demo: {} ({scopes}), valid 1 h", path.display());
    }
    let verifier = Verifier::new(keys, VerifierConfig::new(DEMO_ISSUER, DEMO_AUDIENCE, env))?
        .with_revocations(Arc::new(RevocationList::new()));
    Ok(verifier)
}

/// Runs one call and prints its outcome: `ok: …`, or the status code and message.
async fn call(
    addr: String,
    token_file: &Path,
    method: &str,
    project: String,
) -> Result<bool, BoxError> {
    let token = std::fs::read_to_string(token_file)?;
    let mut client = ProjectsClient::connect(addr).await?;
    let outcome = match method {
        "get" => client
            .get_project(with_token(
                GetProjectRequest {
                    project_id: project,
                },
                token.trim(),
            )?)
            .await
            .map(|r| {
                let p = r.into_inner();
                format!("project {} ({}), viewer {}", p.id, p.name, p.viewer)
            }),
        "delete" => client
            .delete_project(with_token(
                DeleteProjectRequest {
                    project_id: project.clone(),
                },
                token.trim(),
            )?)
            .await
            .map(|r| format!("project {project} deleted by {}", r.into_inner().deleted_by)),
        other => return Err(format!("unknown method {other:?}: get or delete").into()),
    };
    match outcome {
        Ok(line) => {
            println!("ok: {line}");
            Ok(true)
        }
        Err(status) => {
            println!("{:?}: {}", status.code(), status.message());
            Ok(false)
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    match Args::parse().command {
        Command::Serve { demo: dir, listen } => {
            let verifier = Arc::new(demo(&dir)?);
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("listening on http://{}", listener.local_addr()?);
            serve(listener, verifier, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        }
        Command::Call {
            addr,
            token_file,
            method,
            project,
        } => {
            if call(addr, &token_file, &method, project).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}

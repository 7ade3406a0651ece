//! What the token service's test files share: a fresh store folder, a loopback listener, the
//! service served with peer addresses, and URL-encoding for form values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use scopekey_server::TokenService;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A fresh folder for one test's store, removed when dropped.
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(prefix: &str) -> Self {
        let id = scopekey::TokenId::generate()
            .unwrap()
            .as_str()
            .to_lowercase();
        let dir = std::env::temp_dir().join(format!("{prefix}-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// The SQLite store URL in it.
    pub(crate) fn store_url(&self) -> String {
        format!("sqlite://{}/scopekey.db", self.0.display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback listener and its base URL (`http://127.0.0.1:PORT`), the service's issuer.
pub(crate) async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (listener, base)
}

/// Serves `service` on `listener`, with peer addresses, in the background.
pub(crate) fn serve(listener: tokio::net::TcpListener, service: &TokenService) {
    let app = service
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// `s` percent-encoded for a form value or a query parameter (unreserved characters kept).
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

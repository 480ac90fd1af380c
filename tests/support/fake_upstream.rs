//! An upstream that is not Sluice, for the hostile cases only (one that lies about a file's
//! digest, one that stalls): a few axum routes on a loopback port, on a runtime of its own. Every
//! other upstream in the tests is a second `sluice serve`.

pub struct FakeUpstream {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub origin: String,
    _runtime: tokio::runtime::Runtime,
}

impl FakeUpstream {
    /// Binds a port first, so that the routes may name their own URLs (`app` gets the origin),
    /// then serves them until dropped.
    pub fn serve(app: impl FnOnce(&str) -> axum::Router) -> FakeUpstream {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let app = app(&origin);
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeUpstream { origin, _runtime: runtime }
    }
}

//! `--web-root DIR`: a directory served as static files on the HTTP listeners, so a browser
//! page (the chat page, `examples/web`) can come from the broker it talks to: same origin, no
//! other server to run.
//!
//! Only what lies inside the directory is served. `ServeDir` refuses `..` segments; a symbolic
//! link (or a linked directory) inside the tree that leads out of it answers 404 like a
//! missing file, so a stray link cannot publish the rest of the disk.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use tower_http::services::ServeDir;

/// Every path under `root`, `index.html` for a directory; answers 404 for anything else.
pub fn router(root: &Path) -> axum::Router {
    // The check below compares resolved paths, so the root is resolved once here (the config
    // check made sure it is a directory).
    let root = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let files = ServeDir::new(&root).append_index_html_on_directories(true);
    axum::Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn_with_state(Arc::new(root), inside_root))
}

/// Lets a request through only if the file it names, links resolved, is inside `root`.
/// A name that does not exist passes: `ServeDir` answers it 404 itself.
async fn inside_root(State(root): State<Arc<PathBuf>>, request: Request, next: Next) -> Response {
    let Ok(decoded) = percent_decode_str(request.uri().path()).decode_utf8() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let relative = Path::new(decoded.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::canonicalize(root.join(relative)).await {
        Ok(resolved) if !resolved.starts_with(&*root) => StatusCode::NOT_FOUND.into_response(),
        _ => next.run(request).await,
    }
}

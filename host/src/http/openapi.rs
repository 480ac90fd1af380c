//! The native API's OpenAPI 3.1 document, served at `GET /api/v1/openapi.json`.
//!
//! It is generated from the code: each `/api/v1` handler carries one `#[utoipa::path]` block
//! (its method, path, parameters, bodies and the token scopes it needs), and the API's routers
//! are `utoipa_axum` routers, so registering a route with `routes!` is also what puts it in the
//! document; a path and its handler cannot drift apart. The few routes axum cannot take from an
//! annotation (the package route's `{*name}` wildcard, the badges, which live with the web UI)
//! are listed in [`ApiDoc`].
//!
//! The answers that the handlers build as JSON objects are described by the schema types below;
//! the rows they contain are the store's own row types (`ToSchema` derived on them). CI checks
//! that every answer of a live server matches this document (tests/openapi.rs, schemathesis).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::store::db::git_tags::GitTagRow;
use crate::store::db::pipelines::DeliveryRow;
use crate::store::db::ui::{AuditPush, UiRelease};
use crate::store::db::{JobRow, PipelineRow, PushRow, TokenRow};

/// The name of the one security scheme: a sluice token, sent as `Authorization: Bearer <token>`
/// (or `Basic` with the token as password). Each operation's security requirement lists the
/// scopes its token needs: `read`, `publish`, `admin`, `runner`, or `job` for a running job's
/// own token.
pub const TOKEN: &str = "token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice native API",
        description = "Pushes (the audit log), repositories and packages, plugins, tokens, pipelines, jobs and badges. \
            Every operation but the badges and this document needs a token; each operation's security requirement \
            lists the scopes that token needs (on the repository concerned, for tokens limited to one repository). \
            Resources a token may not read answer 404, as if they did not exist.",
    ),
    modifiers(&TokenScheme),
    components(schemas(ErrorBody)),
    paths(openapi_json, super::api::get_package, super::ui::badge::package_badge_doc, super::ui::badge::pipeline),
    tags(
        (name = "audit", description = "The push audit log"),
        (name = "repositories", description = "Repositories, their packages and git-tag sources"),
        (name = "tokens", description = "API tokens (admins)"),
        (name = "pipelines", description = "Pipelines and their jobs"),
        (name = "runners", description = "The job queue, for runners and their jobs' tokens"),
        (name = "badges", description = "SVG status badges for READMEs"),
        (name = "meta", description = "Plugins and this document"),
    )
)]
pub struct ApiDoc;

struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A sluice token (`sluice token create`, or `POST /api/v1/tokens`)."))
                    .build(),
            ),
        );
    }
}

/// The native API's routes and its document: `/api/v1/...` with `/api/v1/openapi.json`.
pub fn router() -> Router<super::State> {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", super::api::router().merge(super::pipelines::router()))
        .split_for_parts();
    let doc = Arc::new(serde_json::to_value(&doc).expect("the OpenAPI document serialises"));
    api.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of the native API", body = Object)))]
#[allow(dead_code)] // The route is a closure over the built document; this carries its annotation.
fn openapi_json() {}

/// An error answer: every 4xx and 5xx of the API carries one (axum's own rejections of a
/// malformed path, query or body are plain text).
#[derive(ToSchema)]
#[allow(dead_code)] // Never constructed: AppError builds it with json!.
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

/// The error answers every operation may give.
pub struct Errors;

fn error_response(description: &str) -> RefOr<Response> {
    let json =
        ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody")))).build();
    // axum answers a path, query or body it cannot parse with a plain-text reason.
    let text = ContentBuilder::new()
        .schema(Some(utoipa::openapi::schema::Object::with_type(utoipa::openapi::Type::String)))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json)
        .content("text/plain", text)
        .build()
        .into()
}

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "A malformed path, query or body"),
            ("401", "No token, or one that is not valid (expired, revoked, unknown)"),
            ("403", "The token lacks the scope this operation needs"),
            ("404", "No such resource, or one the token may not read"),
            ("409", "A conflict with what is stored"),
            ("413", "A body too large"),
            ("415", "A body of the wrong content type"),
            ("422", "A body that does not have the documented shape"),
        ]
        .into_iter()
        .map(|(code, description)| (code.to_string(), error_response(description)))
        .collect()
    }
}

pub use answers::*;

/// The answers the handlers build with `json!`, described field by field. They are never
/// constructed: they exist for their schemas, which the schemathesis run holds to the real answers.
#[allow(dead_code)]
mod answers {
    use super::*;

    #[derive(ToSchema)]
    pub struct PushList {
        /// Newest first.
        pub pushes: Vec<AuditPush>,
    }

    #[derive(ToSchema)]
    pub struct RepositoryList {
        pub repositories: Vec<RepositoryInfo>,
    }

    #[derive(ToSchema)]
    pub struct RepositoryInfo {
        pub name: String,
        /// The format its plugin serves.
        pub format: String,
        /// Where its plugin came from.
        pub plugin: String,
        #[schema(value_type = String, example = "pipeline")]
        /// `none` (versions are served once stored) or `pipeline` (once their pipeline succeeded).
        pub gate: String,
        #[schema(example = "anonymous")]
        /// `anonymous` or `token`: whether reading needs a token.
        pub read: String,
    }

    #[derive(ToSchema)]
    pub struct PackageList {
        /// How many packages match, over all pages.
        pub total: i64,
        pub packages: Vec<PackageSummary>,
    }

    #[derive(ToSchema)]
    pub struct PackageSummary {
        pub name: String,
        /// How many files (versions) it has.
        pub versions: i64,
        pub modified_at: i64,
    }

    #[derive(ToSchema)]
    pub struct PackageDetail {
        pub repository: String,
        pub name: String,
        pub created_at: i64,
        pub modified_at: i64,
        /// Distribution tags: tag name to version.
        pub tags: HashMap<String, String>,
        pub files: Vec<PackageFile>,
    }

    #[derive(ToSchema)]
    pub struct PackageFile {
        /// The pipeline of the push that stored it, if it had one.
        pub pipeline: Option<PipelineRef>,
        pub version: String,
        pub qualifier: String,
        pub file_name: String,
        pub size: i64,
        pub sha256: String,
        pub push_id: i64,
        pub created_at: i64,
        /// Whether clients see it (a gated repository serves a version once its pipeline succeeded).
        pub released: bool,
        pub deprecated: Option<String>,
        pub yanked: bool,
        /// The plugin's metadata record for the file.
        pub metadata: Value,
    }

    #[derive(ToSchema)]
    pub struct PipelineRef {
        pub id: i64,
        pub status: String,
    }

    #[derive(ToSchema)]
    pub struct PluginList {
        pub plugins: Vec<PluginInfo>,
    }

    #[derive(ToSchema)]
    pub struct PluginInfo {
        pub name: String,
        pub source: String,
        pub sha256: String,
        /// What the plugin says about its format (the contract's `format-info`).
        pub info: Value,
    }

    #[derive(ToSchema)]
    pub struct IssuedToken {
        pub id: i64,
        pub name: String,
        /// The secret: shown this once, stored only as a hash.
        pub token: String,
        pub expires_at: Option<i64>,
    }

    #[derive(ToSchema)]
    pub struct TokenList {
        pub tokens: Vec<TokenRow>,
    }

    #[derive(ToSchema)]
    pub struct Revoked {
        pub id: i64,
        pub revoked: bool,
    }

    #[derive(ToSchema)]
    pub struct SyncJobAnswer {
        /// The sync job: state, progress and (once done) its report.
        pub job: Value,
        /// Where to poll it.
        pub url: String,
    }

    #[derive(ToSchema)]
    pub struct WebhookAnswer {
        /// Whether the delivery started a sync.
        pub synced: bool,
        /// Why it did not.
        pub reason: Option<String>,
        pub job: Option<Value>,
        pub url: Option<String>,
        /// `provider:sender` of the delivery.
        pub actor: Option<String>,
    }

    #[derive(ToSchema)]
    pub struct GitTagList {
        pub tags: Vec<GitTagRow>,
    }

    #[derive(ToSchema)]
    pub struct PipelineList {
        /// Newest first.
        pub pipelines: Vec<PipelineRow>,
    }

    #[derive(ToSchema)]
    pub struct PipelineDetail {
        pub pipeline: PipelineRow,
        pub push: Option<PushRow>,
        pub jobs: Vec<JobRow>,
        /// An admin's release of its push past the gate: who, when and why.
        pub release: Option<UiRelease>,
    }

    #[derive(ToSchema)]
    pub struct JobDetail {
        pub job: JobRow,
        /// The job's log so far.
        pub log: String,
    }

    #[derive(ToSchema)]
    pub struct PlayedJob {
        /// The job after it was played.
        pub job: crate::store::db::JobRow,
    }

    #[derive(ToSchema)]
    pub struct JobState {
        /// The job's status after the call.
        pub status: String,
    }

    #[derive(ToSchema)]
    pub struct PipelineFileSaved {
        pub repository: String,
        pub stages: Vec<String>,
        /// The names of its jobs.
        pub jobs: Vec<String>,
    }

    #[derive(ToSchema)]
    pub struct HeldList {
        pub repository: String,
        /// Whether the repository is gated (only a gated one holds versions back).
        pub gated: bool,
        pub total: i64,
        /// The held versions: pending, failed or waiting for approval, with their pipelines.
        pub held: Vec<Value>,
    }

    #[derive(ToSchema)]
    pub struct Released {
        /// The released pipeline (`id`, `repository`, `push_id`, `status`), with who released it
        /// (`released_by`), when (`released_at`) and why (`release_reason`, null if none was given).
        pub pipeline: Value,
    }

    #[derive(ToSchema)]
    pub struct DeliveryList {
        pub deliveries: Vec<DeliveryRow>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/api/v1` route the routers register is in the document (the badge routes are
    /// registered by the web UI and documented here), with its scopes.
    #[test]
    fn document_covers_the_api() {
        let (_, doc) = OpenApiRouter::<super::super::State>::with_openapi(ApiDoc::openapi())
            .nest("/api/v1", super::super::api::router().merge(super::super::pipelines::router()))
            .split_for_parts();
        let doc = serde_json::to_value(&doc).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/pushes",
            "/api/v1/repositories/{repo}/packages/{name}",
            "/api/v1/tokens/{id}",
            "/api/v1/jobs/{id}/finish",
            "/api/v1/pipelines/{id}/badge.svg",
            "/api/v1/repositories/{repo}/packages/{name}/badge.svg",
            "/api/v1/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented: {:?}", paths.keys().collect::<Vec<_>>());
        }
        assert_eq!(doc["paths"]["/api/v1/tokens/{id}"]["delete"]["security"][0][TOKEN][0], "admin");
        assert!(doc["components"]["securitySchemes"][TOKEN].is_object());
        assert_eq!(
            doc["paths"]["/api/v1/pipelines/{id}/badge.svg"]["get"]["responses"]["200"]["content"]["image/svg+xml"]
                ["schema"]["type"],
            "string"
        );
    }
}

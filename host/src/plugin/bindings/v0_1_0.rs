//! `sluice:plugin@0.1.0`, frozen. Its records are converted to and from the newest version's at
//! the boundary, and its imports call the newest implementation: 0.2.0 and 0.3.0 only added things
//! (a README, size limits, a base64 upload source; kept responses, summaries, tokens), so an old
//! plugin loses nothing.

contract_bindings!("../wit/v0.1.0");

use super::latest;
use crate::plugin::host::{BlobHandle, CallState, TreeHandle};
use wasmtime::component::Resource;

fn all<A, B: From<A>>(v: Vec<A>) -> Vec<B> {
    v.into_iter().map(B::from).collect()
}

// What the plugin returns, into the host's types.

impl From<PublishMode> for latest::PublishMode {
    fn from(v: PublishMode) -> Self {
        match v {
            PublishMode::Upload => Self::Upload,
            PublishMode::GitTag => Self::GitTag,
        }
    }
}

impl From<FormatInfo> for latest::FormatInfo {
    fn from(v: FormatInfo) -> Self {
        Self {
            name: v.name,
            display_name: v.display_name,
            case_insensitive_names: v.case_insensitive_names,
            credential_headers: v.credential_headers,
            publish: v.publish.into(),
            install_hint: v.install_hint,
        }
    }
}

impl From<ErrorKind> for latest::ErrorKind {
    fn from(v: ErrorKind) -> Self {
        match v {
            ErrorKind::Invalid => Self::Invalid,
            ErrorKind::NotFound => Self::NotFound,
            ErrorKind::Gone => Self::Gone,
            ErrorKind::Unauthorized => Self::Unauthorized,
            ErrorKind::Forbidden => Self::Forbidden,
            ErrorKind::Conflict => Self::Conflict,
            ErrorKind::TooLarge => Self::TooLarge,
            ErrorKind::Unsupported => Self::Unsupported,
            ErrorKind::Internal => Self::Internal,
        }
    }
}

impl From<Error> for latest::Error {
    fn from(v: Error) -> Self {
        Self { kind: v.kind.into(), message: v.message }
    }
}

impl From<Dependency> for latest::Dependency {
    fn from(v: Dependency) -> Self {
        Self { name: v.name, requirement: v.requirement, kind: v.kind, group: v.group }
    }
}

impl From<Metadata> for latest::Metadata {
    fn from(v: Metadata) -> Self {
        Self {
            name: v.name,
            version: v.version,
            qualifier: v.qualifier,
            summary: v.summary,
            description: v.description,
            license: v.license,
            homepage: v.homepage,
            repository: v.repository,
            authors: v.authors,
            keywords: v.keywords,
            dependencies: all(v.dependencies),
            manifest: v.manifest,
            readme: None,
        }
    }
}

impl From<ExtractionStep> for latest::ExtractionStep {
    fn from(v: ExtractionStep) -> Self {
        Self { tool: v.tool, argv: v.argv }
    }
}

impl From<Extraction> for latest::Extraction {
    fn from(v: Extraction) -> Self {
        Self { media_type: v.media_type, steps: all(v.steps), image: v.image }
    }
}

impl From<JobTemplate> for latest::JobTemplate {
    fn from(v: JobTemplate) -> Self {
        Self {
            name: v.name,
            stage: v.stage,
            script: v.script,
            allow_failure: v.allow_failure,
            timeout_seconds: v.timeout_seconds,
        }
    }
}

impl From<Trigger> for latest::Trigger {
    fn from(v: Trigger) -> Self {
        Self { event: v.event, variables: v.variables, jobs: all(v.jobs) }
    }
}

impl From<Response> for latest::Response {
    fn from(v: Response) -> Self {
        Self { status: v.status, headers: v.headers, body: v.body }
    }
}

impl From<UploadSource> for latest::UploadSource {
    fn from(v: UploadSource) -> Self {
        match v {
            UploadSource::Body => Self::Body,
            UploadSource::BodyRange(r) => Self::BodyRange(r),
            UploadSource::Bytes(b) => Self::Bytes(b),
        }
    }
}

impl From<Upload> for latest::Upload {
    fn from(v: Upload) -> Self {
        Self { file_name: v.file_name, source: v.source.into(), package: v.package, tags: v.tags }
    }
}

impl From<Effect> for latest::Effect {
    fn from(v: Effect) -> Self {
        match v {
            Effect::Publish(u) => Self::Publish(u.into()),
            Effect::SetTag(t) => Self::SetTag(latest::TagChange { package: t.package, tag: t.tag, version: t.version }),
            Effect::Deprecate(d) => {
                Self::Deprecate(latest::Deprecation { package: d.package, version: d.version, message: d.message })
            }
            Effect::Yank(y) => Self::Yank(latest::Yank {
                package: y.package,
                version: y.version,
                qualifier: y.qualifier,
                yanked: y.yanked,
            }),
            Effect::DeleteVersion(v) => {
                Self::DeleteVersion(latest::VersionRef { package: v.package, version: v.version })
            }
            Effect::DeletePackage(p) => Self::DeletePackage(p),
        }
    }
}

impl From<Reply> for latest::Reply {
    fn from(v: Reply) -> Self {
        match v {
            Reply::Respond(r) => Self::Respond(r.into()),
            Reply::ServeFile(f) => Self::ServeFile(latest::FileRef {
                package: f.package,
                file_name: f.file_name,
                content_type: f.content_type,
            }),
        }
    }
}

impl From<Outcome> for latest::Outcome {
    fn from(v: Outcome) -> Self {
        Self { effects: all(v.effects), reply: v.reply.into(), keep: None }
    }
}

impl From<TagFile> for latest::TagFile {
    fn from(v: TagFile) -> Self {
        Self { file_name: v.file_name, bytes: v.bytes }
    }
}

// What the host passes in, into the plugin's types.

impl From<latest::ErrorKind> for ErrorKind {
    fn from(v: latest::ErrorKind) -> Self {
        use latest::ErrorKind as K;
        match v {
            K::Invalid => Self::Invalid,
            K::NotFound => Self::NotFound,
            K::Gone => Self::Gone,
            K::Unauthorized => Self::Unauthorized,
            K::Forbidden => Self::Forbidden,
            K::Conflict => Self::Conflict,
            K::TooLarge => Self::TooLarge,
            K::Unsupported => Self::Unsupported,
            // 0.1.0 has no `unavailable` (0.4.0): the closest it shows is an internal error.
            K::Internal | K::Unavailable => Self::Internal,
        }
    }
}

impl From<latest::Error> for Error {
    fn from(v: latest::Error) -> Self {
        Self { kind: v.kind.into(), message: v.message }
    }
}

impl From<latest::Dependency> for Dependency {
    fn from(v: latest::Dependency) -> Self {
        Self { name: v.name, requirement: v.requirement, kind: v.kind, group: v.group }
    }
}

impl From<latest::Metadata> for Metadata {
    fn from(v: latest::Metadata) -> Self {
        Self {
            name: v.name,
            version: v.version,
            qualifier: v.qualifier,
            summary: v.summary,
            description: v.description,
            license: v.license,
            homepage: v.homepage,
            repository: v.repository,
            authors: v.authors,
            keywords: v.keywords,
            dependencies: all(v.dependencies),
            manifest: v.manifest,
        }
    }
}

impl From<latest::Request> for Request {
    fn from(v: latest::Request) -> Self {
        Self {
            method: v.method,
            path: v.path,
            query: v.query,
            headers: v.headers,
            base_url: v.base_url,
            principal: v.principal,
        }
    }
}

impl From<latest::TagInfo> for TagInfo {
    fn from(v: latest::TagInfo) -> Self {
        // 0.1.0 does not know which git source a tag came from (added in 0.2.0).
        Self { name: v.name, commit: v.commit, time: v.time }
    }
}

impl From<latest::TreeEntry> for TreeEntry {
    fn from(v: latest::TreeEntry) -> Self {
        Self { path: v.path, kind: v.kind, size: v.size }
    }
}

impl From<latest::Artifact> for Artifact {
    fn from(v: latest::Artifact) -> Self {
        Self {
            version: v.version,
            qualifier: v.qualifier,
            file_name: v.file_name,
            size: v.size,
            sha256: v.sha256,
            sha512: v.sha512,
            sha1: v.sha1,
            published_ms: v.published_ms,
            metadata: v.metadata.into(),
            deprecated: v.deprecated,
            yanked: v.yanked,
        }
    }
}

impl From<latest::PackageView> for PackageView {
    fn from(v: latest::PackageView) -> Self {
        Self {
            name: v.name,
            created_ms: v.created_ms,
            modified_ms: v.modified_ms,
            tags: v.tags,
            artifacts: all(v.artifacts),
        }
    }
}

impl From<latest::SearchPage> for SearchPage {
    fn from(v: latest::SearchPage) -> Self {
        Self { total: v.total, packages: all(v.packages) }
    }
}

// The imports: the newest implementation, its answers converted.

impl HostBlob for CallState {
    fn size(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<u64> {
        latest::HostBlob::size(self, blob)
    }

    fn read(&mut self, blob: Resource<BlobHandle>, offset: u64, len: u32) -> wasmtime::Result<Vec<u8>> {
        latest::HostBlob::read(self, blob, offset, len)
    }

    fn drop(&mut self, blob: Resource<BlobHandle>) -> wasmtime::Result<()> {
        latest::HostBlob::drop(self, blob)
    }
}

impl HostTree for CallState {
    fn entries(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<Vec<TreeEntry>> {
        latest::HostTree::entries(self, tree).map(all)
    }

    fn read(&mut self, tree: Resource<TreeHandle>, path: String) -> wasmtime::Result<Result<Vec<u8>, String>> {
        latest::HostTree::read(self, tree, path)
    }

    fn drop(&mut self, tree: Resource<TreeHandle>) -> wasmtime::Result<()> {
        latest::HostTree::drop(self, tree)
    }
}

impl Host for CallState {}

impl sluice::plugin::registry::Host for CallState {
    fn package(&mut self, name: String) -> wasmtime::Result<Option<PackageView>> {
        latest::sluice::plugin::registry::Host::package(self, name).map(|p| p.map(Into::into))
    }

    fn search(&mut self, query: String, offset: u32, limit: u32) -> wasmtime::Result<SearchPage> {
        latest::sluice::plugin::registry::Host::search(self, query, offset, limit).map(Into::into)
    }

    fn all_packages(&mut self) -> wasmtime::Result<Vec<PackageView>> {
        latest::sluice::plugin::registry::Host::all_packages(self).map(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest version's records, compared as JSON (bindgen derives no `PartialEq`).
    fn json(v: &impl serde::Serialize) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn records_cross_the_boundary_unchanged_but_for_what_0_2_0_added() {
        let mut meta = latest::Metadata::named("demo", "1.0.0");
        meta.dependencies.push(latest::Dependency {
            name: "dep".into(),
            requirement: "^1".into(),
            kind: "runtime".into(),
            group: String::new(),
        });
        meta.manifest = "{}".into();
        meta.readme = Some("# demo".into());
        let back: latest::Metadata = Metadata::from(meta.clone()).into();
        assert_eq!(json(&back), json(&latest::Metadata { readme: None, ..meta }));

        let outcome = Outcome {
            effects: vec![Effect::Publish(Upload {
                file_name: "demo-1.0.0.tgz".into(),
                source: UploadSource::BodyRange((10, 20)),
                package: Some("demo".into()),
                tags: vec!["latest".into()],
            })],
            reply: Reply::Respond(Response { status: 201, headers: Vec::new(), body: b"ok".to_vec() }),
        };
        let outcome: latest::Outcome = outcome.into();
        assert_eq!(
            json(&outcome),
            serde_json::json!({
                "effects": [{"Publish": {"file_name": "demo-1.0.0.tgz", "source": {"BodyRange": [10, 20]},
                    "package": "demo", "tags": ["latest"]}}],
                "reply": {"Respond": {"status": 201, "headers": [], "body": [111, 107]}},
                "keep": null,
            })
        );
    }
}

//! Declaring that the host may keep a response (contract 0.3.0's `outcome.keep`).
//!
//! A handler builds its outcome as before and says what the bytes were rendered from:
//!
//! ```text
//! Outcome::respond(packument).keep_for_package(name).vary("accept")
//! ```
//!
//! Only a successful `respond` reply without effects can be kept, and only if its bytes depend
//! on nothing but the request's method, path, query and base URL, the `vary` headers and the
//! listed sources: never on the caller (`principal`, tokens). The `keep_*` methods leave any other
//! outcome (effects, a stored file, a status other than 200 such as a 206 or 304) as it is, so a handler may chain them onto
//! whatever it returns.

use crate::{Keep, Outcome, Reply, Source};

impl Keep {
    /// A keep that depends on nothing (kept until the host restarts).
    pub fn forever() -> Self {
        Keep { depends_on: Vec::new(), vary: Vec::new(), append_only: false, layout: None }
    }
}

impl Outcome {
    /// Whether the host could keep this outcome at all.
    fn keepable(&self) -> bool {
        self.effects.is_empty() && matches!(&self.reply, Reply::Respond(r) if r.status == 200)
    }

    fn keep_mut(&mut self) -> Option<&mut Keep> {
        if !self.keepable() {
            return None;
        }
        Some(self.keep.get_or_insert_with(Keep::forever))
    }

    /// The host may keep this response until `package` changes (its files, tags, deprecations,
    /// yanks; including its first version).
    pub fn keep_for_package(mut self, package: impl Into<String>) -> Self {
        let package = package.into();
        let Some(keep) = self.keep_mut() else { return self };
        if !keep.depends_on.iter().any(|s| matches!(s, Source::Package(p) if *p == package)) {
            keep.depends_on.push(Source::Package(package));
        }
        self
    }

    /// The host may keep this response until any package of the repository changes.
    pub fn keep_for_repository(mut self) -> Self {
        let Some(keep) = self.keep_mut() else { return self };
        if !keep.depends_on.iter().any(|s| matches!(s, Source::Repository)) {
            keep.depends_on.push(Source::Repository);
        }
        self
    }

    /// The host may keep this response for good: it depends on the request alone (a service
    /// index, a config document).
    pub fn keep_forever(mut self) -> Self {
        self.keep_mut();
        self
    }

    /// The response differs by this request header (lower-case), as npm's by `accept`. Call it
    /// with one of the `keep_*` methods; on its own it keeps the response for good.
    pub fn vary(mut self, header: &str) -> Self {
        let header = header.to_ascii_lowercase();
        let Some(keep) = self.keep_mut() else { return self };
        if !keep.vary.contains(&header) {
            keep.vary.push(header);
        }
        self
    }

    /// The kept document only grows between compactions: on a change the host asks the
    /// plugin's `extend` for the bytes to append.
    pub fn append_only(mut self) -> Self {
        if let Some(keep) = self.keep_mut() {
            keep.append_only = true;
        }
        self
    }

    /// The kept body is made of these parts (from [`PartedBody::finish`](crate::PartedBody)):
    /// on a change the host asks [`Plugin::render_parts`](crate::Plugin::render_parts) for the
    /// changed parts only and splices them in.
    pub fn in_parts(mut self, layout: crate::Layout) -> Self {
        if let Some(keep) = self.keep_mut() {
            keep.layout = Some(layout);
        }
        self
    }

    /// Whether the host may keep this outcome, and what for (for unit tests and logs).
    pub fn kept_for(&self) -> Option<&[Source]> {
        self.keep.as_ref().map(|k| k.depends_on.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use crate::http::text;
    use crate::*;

    #[test]
    fn builds_keeps() {
        let plain = Outcome::respond(text(200, "x"));
        assert!(plain.keep.is_none());
        let kept = Outcome::respond(text(200, "x")).keep_for_package("a").vary("Accept").keep_for_package("a");
        let keep = kept.keep.unwrap();
        assert_eq!(keep.depends_on, vec![Source::Package("a".into())]);
        assert_eq!(keep.vary, vec!["accept".to_string()]);
        assert!(!keep.append_only);
        let whole = Outcome::respond(text(200, "x")).keep_for_repository().append_only().keep.unwrap();
        assert_eq!(whole.depends_on, vec![Source::Repository]);
        assert!(whole.append_only);
        assert_eq!(Outcome::respond(text(200, "x")).keep_forever().kept_for(), Some(&[][..]));
        // Errors, effects and stored files are never kept.
        assert!(Outcome::respond(text(404, "x")).keep_forever().keep.is_none());
        assert!(Outcome::with_effects(vec![Effect::DeletePackage("a".into())], text(200, "ok"))
            .keep_for_package("a")
            .keep
            .is_none());
        assert!(Outcome::serve_file("a", "a.tgz", "application/gzip").keep_for_package("a").keep.is_none());
    }
}

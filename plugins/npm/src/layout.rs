//! Where the entries of a package tarball land when it is unpacked the way npm unpacks it (and a
//! runner's `tar -x --strip-components=1`): the first path component is dropped whatever it is
//! called (`package/`, `node/` in `@types/node`, `mscdex-busboy-9aadb7a/` from a git archive),
//! and paths are followed through the symbolic links earlier entries made. Checking each path as
//! written is not enough: `x -> .`, `y -> x/..`, then `y/escaped.txt` writes next to the package.

use std::collections::{HashMap, VecDeque};

/// Linux gives up on a path after 40 links (`ELOOP`); so does this model.
const MAX_LINK_HOPS: usize = 40;

/// Why an entry cannot be unpacked safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It would be written, or point, outside the folder the package unpacks into.
    Outside,
    /// Following its links never ends.
    Loop,
}

/// A path inside the package folder, one name per component; empty is the folder itself.
pub type Location = Vec<String>;

/// The symbolic links unpacked so far, by where they are, with their targets as written.
#[derive(Default)]
pub struct Layout {
    links: HashMap<Location, Vec<String>>,
}

/// An archive path with its first component dropped, as extractors strip it; `None` when nothing
/// is left (the top folder itself, or a file beside it, which extractors skip).
pub fn strip(raw: &str) -> Result<Option<Vec<String>>, Refusal> {
    if raw.starts_with('/') {
        return Err(Refusal::Outside);
    }
    let mut parts = raw.split('/');
    if parts.next() == Some("..") {
        return Err(Refusal::Outside);
    }
    let rest: Vec<String> = parts.filter(|p| !p.is_empty() && *p != ".").map(str::to_string).collect();
    Ok((!rest.is_empty()).then_some(rest))
}

fn target_segments(target: &str) -> Result<Vec<String>, Refusal> {
    if target.starts_with('/') {
        return Err(Refusal::Outside);
    }
    Ok(target.split('/').filter(|p| !p.is_empty() && *p != ".").map(str::to_string).collect())
}

impl Layout {
    /// Where `rel`, taken from the folder `base`, leads: every link on the way is followed, the
    /// last component only when `follow_last` (an extractor replaces an entry's own path, it does
    /// not write through it). A link to a path that does not exist yet is taken as written.
    fn resolve(&self, base: &[String], rel: &[String], follow_last: bool) -> Result<Location, Refusal> {
        let mut out = base.to_vec();
        let mut pending: VecDeque<String> = rel.iter().cloned().collect();
        let mut hops = 0;
        while let Some(segment) = pending.pop_front() {
            if segment == ".." {
                out.pop().ok_or(Refusal::Outside)?;
                continue;
            }
            out.push(segment);
            if pending.is_empty() && !follow_last {
                break;
            }
            if let Some(target) = self.links.get(&out) {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(Refusal::Loop);
                }
                out.pop();
                for segment in target.iter().rev() {
                    pending.push_front(segment.clone());
                }
            }
        }
        Ok(out)
    }

    /// Where a stripped entry path lands (its folders resolved through links).
    fn place(&self, rest: &[String]) -> Result<Location, Refusal> {
        self.resolve(&[], rest, false)
    }

    /// A file or folder entry: where it lands. It replaces a link that was there.
    pub fn add_plain(&mut self, rest: &[String]) -> Result<Location, Refusal> {
        let at = self.place(rest)?;
        self.links.remove(&at);
        Ok(at)
    }

    /// A symbolic link entry: where it lands; its target must resolve inside from there.
    pub fn add_symlink(&mut self, rest: &[String], target: &str) -> Result<Location, Refusal> {
        let at = self.place(rest)?;
        let target = target_segments(target)?;
        self.link_at(at, target)
    }

    fn link_at(&mut self, at: Location, target: Vec<String>) -> Result<Location, Refusal> {
        self.resolve(&at[..at.len().saturating_sub(1)], &target, true)?;
        self.links.insert(at.clone(), target);
        Ok(at)
    }

    /// A hard link entry: its target is another archive path, stripped the same way. A hard link
    /// to a symbolic link is that symbolic link again, resolved from its new folder.
    pub fn add_hard_link(&mut self, rest: &[String], target: &str) -> Result<Location, Refusal> {
        let target = strip(target)?.ok_or(Refusal::Outside)?;
        let source = self.resolve(&[], &target, false)?;
        let at = self.place(rest)?;
        self.links.remove(&at);
        match self.links.get(&source).cloned() {
            Some(link_target) => self.link_at(at, link_target),
            None => Ok(at),
        }
    }

    /// Once every entry is in: each link must still resolve inside, as later links can change
    /// where an earlier one leads. Returns a link that does not, with why.
    pub fn escaping_link(&self) -> Option<(Location, String, Refusal)> {
        let mut all: Vec<_> = self.links.iter().collect();
        all.sort();
        all.into_iter().find_map(|(at, target)| {
            self.resolve(&at[..at.len() - 1], target, true).err().map(|why| (at.clone(), target.join("/"), why))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(path: &str) -> Vec<String> {
        strip(path).unwrap().unwrap()
    }

    #[test]
    fn strips_any_first_component() {
        assert_eq!(s("package/package.json"), ["package.json"]);
        assert_eq!(s("node/index.d.ts"), ["index.d.ts"]);
        assert_eq!(s("./package/package.json"), ["package", "package.json"], "`.` counts, as in tar");
        assert_eq!(s("a//b/./c"), ["b", "c"]);
        assert_eq!(strip("package/").unwrap(), None);
        assert_eq!(strip("pax_global_header").unwrap(), None);
        assert_eq!(strip("/etc/passwd"), Err(Refusal::Outside));
        assert_eq!(strip("../x"), Err(Refusal::Outside));
    }

    #[test]
    fn follows_links_like_an_extractor() {
        let mut l = Layout::default();
        assert_eq!(l.add_symlink(&s("p/lib"), "src").unwrap(), ["lib"]);
        assert_eq!(l.add_plain(&s("p/lib/a.js")).unwrap(), ["src", "a.js"], "written through the link");
        assert_eq!(l.add_plain(&s("p/src/../package.json")).unwrap(), ["package.json"]);
        assert!(l.escaping_link().is_none());

        // The chain: each link looks harmless as written.
        let mut l = Layout::default();
        l.add_symlink(&s("p/x"), ".").unwrap();
        assert_eq!(l.add_symlink(&s("p/y"), "x/.."), Err(Refusal::Outside));

        let mut l = Layout::default();
        l.add_symlink(&s("p/x"), ".").unwrap();
        l.add_plain(&s("p/y")).unwrap();
        assert_eq!(l.add_plain(&s("p/x/x/x/y/z")).unwrap(), ["y", "z"]);
        assert_eq!(l.add_plain(&s("p/x/../z")), Err(Refusal::Outside));
    }

    #[test]
    fn later_links_can_make_earlier_ones_escape() {
        let mut l = Layout::default();
        l.add_symlink(&s("p/d1/d2/a"), "b/../..").unwrap();
        l.add_symlink(&s("p/d1/d2/b"), "../..").unwrap();
        let (at, target, why) = l.escaping_link().unwrap();
        assert_eq!((at.join("/"), target.as_str(), why), ("d1/d2/a".to_string(), "b/../..", Refusal::Outside));
    }

    #[test]
    fn hard_links_and_loops() {
        let mut l = Layout::default();
        l.add_plain(&s("p/index.js")).unwrap();
        assert_eq!(l.add_hard_link(&s("p/b.js"), "p/index.js").unwrap(), ["b.js"]);
        l.add_symlink(&s("p/a/l"), "../x").unwrap();
        assert_eq!(l.add_hard_link(&s("p/h"), "p/a/l"), Err(Refusal::Outside), "a hard link to a symlink moves it");
        assert_eq!(l.add_hard_link(&s("p/h"), "../etc/passwd"), Err(Refusal::Outside));

        let mut l = Layout::default();
        l.add_symlink(&s("p/a"), "b").unwrap();
        l.add_symlink(&s("p/b"), "a").unwrap();
        assert_eq!(l.add_plain(&s("p/a/file")), Err(Refusal::Loop));
        assert_eq!(l.escaping_link().unwrap().2, Refusal::Loop);
        l.add_plain(&s("p/b")).unwrap();
        assert!(l.escaping_link().is_none(), "a file replaced the link");
    }
}

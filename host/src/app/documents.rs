//! Kept documents: protocol responses a plugin marked with `keep` (packuments, registration
//! pages, compact index files, version lists), stored as bytes and served again without calling
//! the plugin or reading the package's rows, until the change log says what they were rendered
//! from changed.
//!
//! A document is keyed by what it may depend on: repository, path, query, base URL (which carries
//! the `Host` a request came to) and the request headers the plugin named in `vary`. It records
//! the change-log position it reflects (`rendered_at`); it is fresh while no package it depends on
//! has a newer change in the [`ChangeFeed`]. A stale document is rendered again by the first
//! reader (one render at a time per document) and, for documents readers use, in the background
//! right after the change. A render that fails (a trap, a timeout, an internal error) keeps the
//! previous bytes serving, is logged and counted, and is retried on the next read or change;
//! readers never get a 500 for it. A render that answers with a client error (the package was
//! deleted) replaces the document: that is the answer now.
//!
//! Documents live in memory, bounded by `document_cache_mb`; after a restart they are rendered
//! again from the store on first read, so a crash between a commit and a render loses nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::plugin::wit;
use crate::store::db::changes::ChangeFeed;

/// Where a document is kept: everything but the `vary` headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FamilyKey {
    repository: String,
    path: String,
    query: String,
    base_url: String,
}

/// The documents at one place, one per combination of the `vary` headers' values.
#[derive(Default)]
struct Family {
    vary: RwLock<Vec<String>>,
    slots: RwLock<HashMap<Vec<Option<String>>, Arc<Slot>>>,
}

/// What a document depends on, by package key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dependency {
    Package(String),
    Repository,
}

/// A kept response: its bytes, validators, and how to render it again.
#[derive(Debug)]
pub struct Kept {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    /// A strong validator, quoted (`"…"`): the MD5 of the body in hex, which is what Bundler
    /// (before 2.5) compares a compact index file's ETag with to verify a ranged append, and what
    /// rubygems.org sends. Any opaque value would do for the other clients.
    pub etag: String,
    /// `sha-256=:…:` of the whole body, for `Repr-Digest` (Bundler checks ranged appends by it).
    pub digest: String,
    /// The body gzip-compressed, for clients that accept it (every package client does): a
    /// 10,000-version packument is 4.7 MB as JSON and a tenth of that compressed. Made once, when
    /// the document is rendered; none for small bodies.
    pub gzip: Option<bytes::Bytes>,
    pub depends_on: Vec<Dependency>,
    pub append_only: bool,
    /// The change-log position this document reflects.
    pub rendered_at: u64,
    /// When it was last rendered whole: an append-only document is compacted (rendered whole
    /// again) at its first change after `document_compact_secs`.
    pub whole_since: std::time::Instant,
    /// The request it was rendered for, to render it again (no principal, no credentials).
    pub request: wit::Request,
    /// Where its per-version parts are, when the plugin rendered it in parts: a change then
    /// re-renders only the parts it touches ([`Kept::spliced`]).
    pub layout: Option<Layout>,
    /// A document in parts is compressed chunk by chunk: a change recompresses the chunks it
    /// touched and reuses the others' deflate streams.
    chunks: Vec<Chunk>,
}

/// A kept item's key and where its bytes are in the kept body.
type KeptItem<'a> = (&'a Arc<str>, std::ops::Range<usize>);

/// A separately compressed piece of a document in parts.
#[derive(Debug, Clone)]
struct Chunk {
    /// Where it is in the body.
    range: std::ops::Range<usize>,
    crc: u32,
    md5: [u8; 16],
    /// Raw deflate, ended by a sync flush, so that chunks concatenate into one stream.
    deflate: bytes::Bytes,
}

/// A kept body's parts (the contract's `layout`) as byte ranges of the body.
#[derive(Debug, Clone)]
pub struct Layout {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Whole(std::ops::Range<usize>),
    /// Keys are shared between a document and the next one spliced from it (a clone, not a
    /// copy, of each of a long history's keys).
    Run {
        separator: Vec<u8>,
        leading: bool,
        items: Vec<(Arc<str>, std::ops::Range<usize>)>,
    },
}

impl Layout {
    /// The ranges of `layout` in `body`, or none when they do not add up to it (the separators
    /// where the layout says, the lengths summing to the body's): a plugin bug, after which the
    /// document is rendered whole on every change.
    fn of(layout: &wit::Layout, body: &[u8]) -> Option<Layout> {
        let mut at = 0usize;
        let mut take = |len: usize| {
            let range = at..at.checked_add(len).filter(|end| *end <= body.len())?;
            at = range.end;
            Some(range)
        };
        let mut segments = Vec::with_capacity(layout.segments.len());
        for segment in &layout.segments {
            segments.push(match segment {
                wit::Segment::Whole(len) => Segment::Whole(take(*len as usize)?),
                wit::Segment::Run(run) => {
                    let mut items = Vec::with_capacity(run.items.len());
                    for (i, (key, len)) in run.items.iter().enumerate() {
                        if i > 0 || run.leading {
                            let sep = take(run.separator.len())?;
                            if body[sep] != run.separator[..] {
                                return None;
                            }
                        }
                        items.push((Arc::from(key.as_str()), take(*len as usize)?));
                    }
                    Segment::Run { separator: run.separator.clone(), leading: run.leading, items }
                }
            });
        }
        (at == body.len()).then_some(Layout { segments })
    }

    /// Where the body is cut into separately compressed chunks: at the end of every whole
    /// segment, and inside runs after an item whose key hashes to a boundary (about one item in
    /// 32, and at least every 64 items or 64 KiB), so that inserting, removing or changing an
    /// item changes one chunk, whatever its place. A chunk holds its items' separators.
    fn chunk_ends(&self) -> Vec<usize> {
        const MAX_ITEMS: usize = 64;
        const MAX_BYTES: usize = 64 << 10;
        let mut ends = Vec::new();
        let mut start = 0;
        for segment in &self.segments {
            match segment {
                Segment::Whole(range) => {
                    ends.push(range.end);
                    start = range.end;
                }
                Segment::Run { items, .. } => {
                    let mut count = 0;
                    for (key, range) in items {
                        count += 1;
                        let boundary = crc32fast::hash(key.as_bytes()).is_multiple_of(32);
                        if boundary || count >= MAX_ITEMS || range.end - start >= MAX_BYTES {
                            ends.push(range.end);
                            (start, count) = (range.end, 0);
                        }
                    }
                    if let Some((_, last)) = items.last() {
                        if ends.last() != Some(&last.end) {
                            ends.push(last.end);
                        }
                        start = last.end;
                    }
                }
            }
        }
        ends.dedup();
        ends
    }

    fn runs(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Run { .. })).count()
    }

    fn wholes(&self) -> usize {
        self.segments.len() - self.runs()
    }
}

/// Why new parts could not be spliced into a kept body: the document is rendered whole instead.
#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    #[error("the parts have {got} whole segments, the layout {want}")]
    Wholes { got: usize, want: usize },
    #[error("item `{key}` has {got} runs, the layout {want}")]
    Runs { key: String, got: usize, want: usize },
    #[error("key `{0}` is in the order but has no bytes, new or kept")]
    Missing(String),
}

impl Kept {
    pub fn new(
        response: wit::Response,
        keep: &wit::Keep,
        depends_on: Vec<Dependency>,
        rendered_at: u64,
        request: wit::Request,
    ) -> Kept {
        let headers = response
            .headers
            .into_iter()
            .filter(|(k, _)| {
                !matches!(k.to_ascii_lowercase().as_str(), "etag" | "content-length" | "repr-digest" | "digest")
            })
            .collect();
        let body: bytes::Bytes = response.body.into();
        let layout = keep.layout.as_ref().and_then(|l| {
            let found = Layout::of(l, &body);
            if found.is_none() {
                tracing::warn!(path = %request.path, "a kept document's layout does not match its body; it is rendered whole on changes");
            }
            found
        });
        Self::with_body(
            response.status,
            headers,
            body,
            keep.append_only,
            depends_on,
            rendered_at,
            request,
            layout,
            None,
        )
    }

    /// This document with `parts` spliced in, reflecting the change log up to `rendered_at`: the
    /// new whole segments, the new items where `parts` has them, the kept bytes of the other
    /// keys, in the order `parts` gives. Copies bytes; no plugin renders the unchanged versions.
    pub fn spliced(&self, parts: &wit::Parts, rendered_at: u64) -> Result<Kept, SpliceError> {
        let layout = self.layout.as_ref().expect("spliced only with a layout");
        let (runs, wholes) = (layout.runs(), layout.wholes());
        if parts.whole.len() != wholes {
            return Err(SpliceError::Wholes { got: parts.whole.len(), want: wholes });
        }
        let mut new: HashMap<&str, &[Option<Vec<u8>>]> = HashMap::with_capacity(parts.items.len());
        for item in &parts.items {
            if item.runs.len() != runs {
                return Err(SpliceError::Runs { key: item.key.clone(), got: item.runs.len(), want: runs });
            }
            new.insert(&item.key, &item.runs);
        }
        let mut kept_keys: Vec<HashMap<&str, KeptItem>> = Vec::with_capacity(runs);
        for segment in &layout.segments {
            if let Segment::Run { items, .. } = segment {
                kept_keys.push(items.iter().map(|(k, r)| (&**k, (k, r.clone()))).collect());
            }
        }
        // Which ordered keys have bytes, new or kept, in some run: one with none is an error,
        // found while splicing rather than by a second pass over a long history's keys.
        let mut placed = vec![false; parts.order.len()];
        let mut body =
            Vec::with_capacity(self.body.len() + parts.items.iter().map(|i| i.runs.len() * 64).sum::<usize>());
        let mut segments = Vec::with_capacity(layout.segments.len());
        let (mut whole_i, mut run_i) = (0, 0);
        for segment in &layout.segments {
            match segment {
                Segment::Whole(_) => {
                    let start = body.len();
                    body.extend_from_slice(&parts.whole[whole_i]);
                    segments.push(Segment::Whole(start..body.len()));
                    whole_i += 1;
                }
                Segment::Run { separator, leading, .. } => {
                    let mut items = Vec::with_capacity(parts.order.len());
                    for (at, key) in parts.order.iter().enumerate() {
                        let kept = kept_keys[run_i].get(key.as_str());
                        let bytes: Option<&[u8]> = match new.get(key.as_str()) {
                            Some(runs) => runs[run_i].as_deref(),
                            None => kept.map(|(_, r)| &self.body[r.clone()]),
                        };
                        placed[at] |= bytes.is_some() || kept.is_some();
                        let Some(bytes) = bytes else { continue };
                        if !items.is_empty() || *leading {
                            body.extend_from_slice(separator);
                        }
                        let start = body.len();
                        body.extend_from_slice(bytes);
                        let key = kept.map_or_else(|| Arc::from(key.as_str()), |(k, _)| Arc::clone(k));
                        items.push((key, start..body.len()));
                    }
                    segments.push(Segment::Run { separator: separator.clone(), leading: *leading, items });
                    run_i += 1;
                }
            }
        }
        if let Some(at) = placed.iter().position(|p| !p) {
            return Err(SpliceError::Missing(parts.order[at].clone()));
        }
        Ok(self.with_new_body(body.into(), rendered_at, Some(Layout { segments })))
    }

    #[allow(clippy::too_many_arguments)]
    fn with_body(
        status: u16,
        headers: Vec<(String, String)>,
        body: bytes::Bytes,
        append_only: bool,
        depends_on: Vec<Dependency>,
        rendered_at: u64,
        request: wit::Request,
        layout: Option<Layout>,
        previous: Option<&Kept>,
    ) -> Kept {
        let (gzip, etag, sha, chunks) = match &layout {
            Some(layout) => {
                let chunks = compress_chunks(&body, &layout.chunk_ends(), previous);
                // A validator from the chunks' digests: as strong as the body's MD5, without
                // reading the unchanged chunks again.
                let mut md5 = md5::Md5::new();
                for c in &chunks {
                    md5.update(c.md5);
                }
                let gzip = (body.len() >= GZIP_MIN).then(|| gzip_of_chunks(&chunks, body.len()));
                (gzip, md5.finalize(), Sha256::digest(&body), chunks)
            }
            // Compressing a large body takes longer than both digests: it runs beside them on a
            // second thread, which halves a multi-megabyte render's wait for its bytes to be kept.
            None if body.len() > PARALLEL_MIN => std::thread::scope(|s| {
                let compressed = s.spawn(|| gzip(&body));
                let (md5, sha) = (md5::Md5::digest(&body), Sha256::digest(&body));
                (compressed.join().unwrap_or(None), md5, sha, Vec::new())
            }),
            None => (gzip(&body), md5::Md5::digest(&body), Sha256::digest(&body), Vec::new()),
        };
        Kept {
            status,
            gzip,
            headers,
            etag: format!("\"{}\"", hex::encode(etag)),
            digest: format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha)),
            body,
            depends_on,
            append_only,
            rendered_at,
            whole_since: std::time::Instant::now(),
            request,
            layout,
            chunks,
        }
    }

    /// This document with `tail` appended, reflecting the change log up to `rendered_at`.
    pub fn extended(&self, tail: &[u8], rendered_at: u64) -> Kept {
        let mut body = Vec::with_capacity(self.body.len() + tail.len());
        body.extend_from_slice(&self.body);
        body.extend_from_slice(tail);
        self.with_new_body(body.into(), rendered_at, None)
    }

    /// The same document (request, headers, dependencies, last whole render) with new bytes,
    /// reusing this one's compressed chunks where the bytes are the same.
    fn with_new_body(&self, body: bytes::Bytes, rendered_at: u64, layout: Option<Layout>) -> Kept {
        Kept {
            whole_since: self.whole_since,
            ..Self::with_body(
                self.status,
                self.headers.clone(),
                body,
                self.append_only,
                self.depends_on.clone(),
                rendered_at,
                self.request.clone(),
                layout,
                Some(self),
            )
        }
    }

    /// Memory the document holds.
    pub fn weight(&self) -> u64 {
        let chunks: usize = self.chunks.iter().map(|c| c.deflate.len()).sum();
        (self.body.len() + self.gzip.as_ref().map_or(0, |g| g.len()) + chunks) as u64
    }

    /// Whether no change the document depends on came after its render.
    pub fn is_fresh(&self, feed: &ChangeFeed, repository: &str) -> bool {
        self.depends_on.iter().all(|d| match d {
            Dependency::Package(key) => feed.package(repository, key) <= self.rendered_at,
            Dependency::Repository => feed.repository(repository) <= self.rendered_at,
        })
    }

    /// Same bytes: a render that changed nothing does not change the validator.
    fn same_bytes(&self, other: &Kept) -> bool {
        self.status == other.status && self.etag == other.etag && self.headers == other.headers
    }
}

/// One document and its render lock.
pub struct Slot {
    repository: String,
    kept: RwLock<Arc<Kept>>,
    /// Held while rendering, so concurrent readers of a stale document wait for one render.
    pub rendering: Mutex<()>,
    last_read: AtomicU64,
    /// Read since its last render: the background refresher re-renders only documents in use.
    read_since_render: AtomicBool,
}

impl Slot {
    pub fn current(&self) -> Arc<Kept> {
        self.kept.read().expect("slot lock").clone()
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct DocumentStats {
    pub hits: AtomicU64,
    pub not_modified: AtomicU64,
    pub renders: AtomicU64,
    pub appends: AtomicU64,
    /// Re-renders of a document in parts that rendered only the changed parts.
    pub part_renders: AtomicU64,
    pub failed_renders: AtomicU64,
    pub stale_served: AtomicU64,
    pub evictions: AtomicU64,
}

pub struct Documents {
    families: RwLock<HashMap<FamilyKey, Arc<Family>>>,
    bytes: AtomicU64,
    cap_bytes: u64,
    clock: AtomicU64,
    pub stats: DocumentStats,
}

/// What a request looks like to the cache.
pub struct DocRequest<'a> {
    pub repository: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub base_url: &'a str,
    pub headers: &'a [(String, String)],
}

impl DocRequest<'_> {
    fn family_key(&self) -> FamilyKey {
        FamilyKey {
            repository: self.repository.to_string(),
            path: self.path.to_string(),
            query: self.query.to_string(),
            base_url: self.base_url.to_string(),
        }
    }

    fn vary_values(&self, vary: &[String]) -> Vec<Option<String>> {
        vary.iter()
            .map(|name| self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()))
            .collect()
    }
}

impl Documents {
    pub fn new(cap_bytes: u64) -> Documents {
        Documents {
            families: Default::default(),
            bytes: AtomicU64::new(0),
            cap_bytes,
            clock: AtomicU64::new(0),
            stats: DocumentStats::default(),
        }
    }

    /// The kept document for a request, fresh or not, marked as read.
    pub fn find(&self, req: &DocRequest) -> Option<Arc<Slot>> {
        let family = self.families.read().expect("cache lock").get(&req.family_key())?.clone();
        let values = req.vary_values(&family.vary.read().expect("cache lock"));
        let slot = family.slots.read().expect("cache lock").get(&values)?.clone();
        slot.last_read.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        slot.read_since_render.store(true, Ordering::Relaxed);
        Some(slot)
    }

    /// Keeps a freshly rendered document for a request (replacing one kept there before).
    pub fn insert(&self, req: &DocRequest, vary: &[String], kept: Kept) -> Arc<Kept> {
        let kept = Arc::new(kept);
        let key = req.family_key();
        let family = {
            let mut families = self.families.write().expect("cache lock");
            families.entry(key).or_default().clone()
        };
        {
            let mut current = family.vary.write().expect("cache lock");
            if *current != vary {
                // The plugin varies by other headers now: what was kept under the old ones is
                // keyed wrongly.
                let mut slots = family.slots.write().expect("cache lock");
                for slot in slots.values() {
                    self.bytes.fetch_sub(slot.current().weight(), Ordering::Relaxed);
                }
                slots.clear();
                *current = vary.to_vec();
            }
        }
        let values = req.vary_values(vary);
        let slot = Arc::new(Slot {
            repository: req.repository.to_string(),
            kept: RwLock::new(kept.clone()),
            rendering: Mutex::new(()),
            last_read: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            read_since_render: AtomicBool::new(false),
        });
        self.bytes.fetch_add(kept.weight(), Ordering::Relaxed);
        if let Some(old) = family.slots.write().expect("cache lock").insert(values, slot) {
            self.bytes.fetch_sub(old.current().weight(), Ordering::Relaxed);
        }
        self.stats.renders.fetch_add(1, Ordering::Relaxed);
        self.evict_if_needed();
        kept
    }

    /// Replaces a slot's document after a render. Keeps the old one (and its validator) when the
    /// bytes are the same.
    pub fn replace(&self, slot: &Slot, kept: Kept) -> Arc<Kept> {
        let mut current = slot.kept.write().expect("slot lock");
        slot.read_since_render.store(false, Ordering::Relaxed);
        if current.same_bytes(&kept) {
            let same = Arc::new(Kept { body: current.body.clone(), ..kept });
            *current = same.clone();
            return same;
        }
        let kept = Arc::new(kept);
        self.bytes.fetch_add(kept.weight(), Ordering::Relaxed);
        self.bytes.fetch_sub(current.weight(), Ordering::Relaxed);
        *current = kept.clone();
        drop(current);
        self.evict_if_needed();
        kept
    }

    /// Forgets a document (its render now answers an error, or keeps nothing).
    pub fn remove(&self, req: &DocRequest) {
        let Some(family) = self.families.read().expect("cache lock").get(&req.family_key()).cloned() else { return };
        let values = req.vary_values(&family.vary.read().expect("cache lock"));
        let old = family.slots.write().expect("cache lock").remove(&values);
        if let Some(old) = old {
            self.bytes.fetch_sub(old.current().weight(), Ordering::Relaxed);
        }
    }

    /// Documents that are stale and were read since their last render: the ones worth
    /// rendering again right after a change.
    pub fn stale_in_use(&self, feed: &ChangeFeed) -> Vec<Arc<Slot>> {
        let families: Vec<Arc<Family>> = self.families.read().expect("cache lock").values().cloned().collect();
        let mut out = Vec::new();
        for family in families {
            for slot in family.slots.read().expect("cache lock").values() {
                if slot.read_since_render.load(Ordering::Relaxed) && !slot.current().is_fresh(feed, &slot.repository) {
                    out.push(slot.clone());
                }
            }
        }
        out
    }

    /// Bytes held.
    pub fn size(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Drops the least recently read documents while more than the cap is held.
    fn evict_if_needed(&self) {
        if self.size() <= self.cap_bytes {
            return;
        }
        let mut families = self.families.write().expect("cache lock");
        let mut all: Vec<(u64, FamilyKey, Vec<Option<String>>, u64)> = Vec::new();
        for (key, family) in families.iter() {
            for (values, slot) in family.slots.read().expect("cache lock").iter() {
                all.push((
                    slot.last_read.load(Ordering::Relaxed),
                    key.clone(),
                    values.clone(),
                    slot.current().weight(),
                ));
            }
        }
        all.sort_by_key(|e| e.0);
        let target = self.cap_bytes / 10 * 9;
        for (_, key, values, len) in all {
            if self.size() <= target {
                break;
            }
            if let Some(family) = families.get(&key) {
                if family.slots.write().expect("cache lock").remove(&values).is_some() {
                    self.bytes.fetch_sub(len, Ordering::Relaxed);
                    self.stats.evictions.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        families.retain(|_, f| !f.slots.read().expect("cache lock").is_empty());
    }
}

/// Bodies larger than this are compressed on a thread of their own while they are digested.
const PARALLEL_MIN: usize = 1 << 20;

/// Bodies smaller than this are sent as they are: compressing saves less than it costs.
const GZIP_MIN: usize = 256;

/// The gzip form of a body worth compressing. Large bodies use the fastest level: a render of a
/// multi-megabyte document should not double in time for a few percent of size.
fn gzip(body: &[u8]) -> Option<bytes::Bytes> {
    use std::io::Write;
    if body.len() < GZIP_MIN {
        return None;
    }
    let level = if body.len() > 256 << 10 { flate2::Compression::fast() } else { flate2::Compression::default() };
    let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
    enc.write_all(body).ok()?;
    enc.finish().ok().map(Into::into)
}

/// The chunks of `body` ending at `ends`, each compressed on its own, reusing the compressed
/// bytes of a chunk of `previous` with the same bytes (found by length and CRC, then compared).
/// Chunks to compress are shared between two threads when there is much to do (a first render).
fn compress_chunks(body: &[u8], ends: &[usize], previous: Option<&Kept>) -> Vec<Chunk> {
    let mut reusable: HashMap<(usize, u32), &Chunk> = HashMap::new();
    if let Some(prev) = previous {
        for c in &prev.chunks {
            reusable.insert((c.range.len(), c.crc), c);
        }
    }
    let mut start = 0;
    let mut out: Vec<Option<Chunk>> = Vec::with_capacity(ends.len());
    let mut todo: Vec<(usize, std::ops::Range<usize>, u32)> = Vec::new();
    for &end in ends {
        let range = start..end;
        start = end;
        let crc = crc32fast::hash(&body[range.clone()]);
        let same = reusable
            .get(&(range.len(), crc))
            .filter(|c| previous.is_some_and(|p| p.body.get(c.range.clone()) == Some(&body[range.clone()])));
        match same {
            Some(c) => out.push(Some(Chunk { range, crc, md5: c.md5, deflate: c.deflate.clone() })),
            None => {
                todo.push((out.len(), range, crc));
                out.push(None);
            }
        }
    }
    let compress = |items: &[(usize, std::ops::Range<usize>, u32)]| -> Vec<(usize, Chunk)> {
        items
            .iter()
            .map(|(i, range, crc)| {
                let bytes = &body[range.clone()];
                let md5 = md5::Md5::digest(bytes).into();
                (*i, Chunk { range: range.clone(), crc: *crc, md5, deflate: deflate_sync(bytes).into() })
            })
            .collect()
    };
    let pending: usize = todo.iter().map(|(_, r, _)| r.len()).sum();
    let done = if pending > PARALLEL_MIN {
        let (a, b) = todo.split_at(todo.len() / 2);
        std::thread::scope(|s| {
            let other = s.spawn(|| compress(b));
            let mut done = compress(a);
            done.extend(other.join().expect("compressing a chunk does not panic"));
            done
        })
    } else {
        compress(&todo)
    };
    for (i, chunk) in done {
        out[i] = Some(chunk);
    }
    out.into_iter().map(|c| c.expect("every chunk is reused or compressed")).collect()
}

/// Raw deflate of `bytes` at the fast level, ended with a sync flush (byte-aligned, not final),
/// as pigz joins the pieces it compresses in parallel.
fn deflate_sync(bytes: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = Vec::with_capacity(bytes.len() / 3 + 64);
    loop {
        let consumed = c.total_in() as usize;
        c.compress_vec(&bytes[consumed..], &mut out, flate2::FlushCompress::Sync).expect("deflate of memory");
        if c.total_in() as usize == bytes.len() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}

/// One gzip member of the chunks' deflate streams: the header, the streams, an empty final
/// block, and the CRC-32 of the whole body combined from the chunks' CRCs.
fn gzip_of_chunks(chunks: &[Chunk], len: usize) -> bytes::Bytes {
    let size: usize = chunks.iter().map(|c| c.deflate.len()).sum();
    let mut out = Vec::with_capacity(size + 20);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut crc = crc32fast::Hasher::new();
    for c in chunks {
        out.extend_from_slice(&c.deflate);
        crc.combine(&crc32fast::Hasher::new_with_initial_len(c.crc, c.range.len() as u64));
    }
    // BFINAL=1, fixed Huffman, end of block.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.into()
}

/// The dependencies a plugin declared, as package keys.
pub fn dependencies(keep: &wit::Keep, key_of: impl Fn(&str) -> String) -> Vec<Dependency> {
    keep.depends_on
        .iter()
        .map(|s| match s {
            wit::Source::Package(name) => Dependency::Package(key_of(name)),
            wit::Source::Repository => Dependency::Repository,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> wit::Request {
        wit::Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: Vec::new(),
            base_url: "http://x/r".into(),
            principal: None,
        }
    }

    fn kept(body: &str, at: u64) -> Kept {
        let keep = wit::Keep {
            depends_on: vec![wit::Source::Package("a".into())],
            vary: vec![],
            append_only: false,
            layout: None,
        };
        Kept::new(
            wit::Response { status: 200, headers: vec![("etag".into(), "\"plugin\"".into())], body: body.into() },
            &keep,
            dependencies(&keep, str::to_string),
            at,
            request("/a"),
        )
    }

    #[test]
    fn documents_are_found_by_path_and_vary_headers_and_replaced_in_place() {
        let docs = Documents::new(1 << 20);
        let abbreviated = vec![("accept".to_string(), "application/vnd.example.abbreviated+json".to_string())];
        let req = |headers: &'static [(String, String)]| DocRequest {
            repository: "r",
            path: "/a",
            query: "",
            base_url: "http://x/r",
            headers,
        };
        let vary = vec!["accept".to_string()];
        let full_req = DocRequest { headers: &[], ..req(&[]) };
        docs.insert(&full_req, &vary, kept("full", 1));
        let abbr_req = DocRequest { headers: &abbreviated, ..req(&[]) };
        docs.insert(&abbr_req, &vary, kept("abbr", 1));
        assert_eq!(&docs.find(&full_req).unwrap().current().body[..], b"full");
        let slot = docs.find(&abbr_req).unwrap();
        assert_eq!(&slot.current().body[..], b"abbr");
        assert!(slot.current().headers.is_empty(), "the plugin's validator is replaced by the host's");
        assert!(docs.find(&DocRequest { path: "/b", ..req(&[]) }).is_none());
        let before = slot.current().etag.clone();
        docs.replace(&slot, kept("abbr", 2));
        assert_eq!(slot.current().etag, before, "same bytes, same validator");
        assert_eq!(slot.current().rendered_at, 2);
        docs.replace(&slot, kept("abbr2", 3));
        assert_ne!(slot.current().etag, before);
        assert_eq!(docs.size(), 4 + 5, "small bodies are not compressed");
    }

    /// A kept document in parts: `{"v":{ITEMS}}` with one item per version.
    fn parted(versions: &[String]) -> Kept {
        let items: Vec<String> = versions.iter().map(|v| format!("\"{v}\":{{\"x\":\"{}\"}}", v.repeat(40))).collect();
        let body = format!("{{\"v\":{{{}}}}}", items.join(","));
        let layout = wit::Layout {
            segments: vec![
                wit::Segment::Whole(6),
                wit::Segment::Run(wit::Run {
                    separator: b",".to_vec(),
                    leading: false,
                    items: versions.iter().zip(&items).map(|(v, i)| (v.clone(), i.len() as u32)).collect(),
                }),
                wit::Segment::Whole(2),
            ],
        };
        let keep = wit::Keep { depends_on: vec![], vary: vec![], append_only: false, layout: Some(layout) };
        Kept::new(
            wit::Response { status: 200, headers: vec![], body: body.into_bytes() },
            &keep,
            vec![],
            1,
            request("/a"),
        )
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).expect("valid gzip");
        out
    }

    #[test]
    fn a_document_in_parts_is_spliced_and_recompressed_only_where_it_changed() {
        let versions: Vec<String> = (0..2000).map(|i| format!("1.0.{i}")).collect();
        let kept = parted(&versions);
        assert!(kept.layout.is_some(), "the layout matches the body");
        assert!(kept.chunks.len() > 20, "{} chunks", kept.chunks.len());
        assert_eq!(gunzip(kept.gzip.as_ref().unwrap()), kept.body, "the chunks make one valid gzip stream");

        // One version changed, one removed, one added at the end.
        let mut order = versions.clone();
        order.retain(|v| v != "1.0.7");
        order.push("2.0.0".into());
        let item = |v: &str, x: &str| wit::Item {
            key: v.into(),
            runs: vec![Some(format!("\"{v}\":{{\"x\":\"{x}\"}}").into_bytes())],
        };
        let parts = wit::Parts {
            whole: vec![b"{\"v\":{".to_vec(), b"}}".to_vec()],
            order,
            items: vec![item("1.0.1000", "changed"), item("2.0.0", &"2.0.0".repeat(40))],
        };
        let next = kept.spliced(&parts, 2).unwrap();
        let text = String::from_utf8(next.body.to_vec()).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(doc["v"]["1.0.1000"]["x"], "changed");
        assert!(doc["v"].get("1.0.7").is_none());
        assert_eq!(doc["v"].as_object().unwrap().len(), 2000);
        assert_eq!(gunzip(next.gzip.as_ref().unwrap()), next.body, "the recompressed stream is the new body");
        assert_ne!(next.etag, kept.etag);
        let reused =
            next.chunks.iter().filter(|c| kept.chunks.iter().any(|o| o.deflate.as_ptr() == c.deflate.as_ptr())).count();
        assert!(
            reused + 4 >= next.chunks.len(),
            "only the touched chunks are compressed again: {reused} of {}",
            next.chunks.len()
        );

        // A render that changes nothing: the same bytes and validator, nothing recompressed.
        let unchanged =
            next.spliced(&wit::Parts { whole: parts.whole.clone(), order: keys(&next), items: vec![] }, 3).unwrap();
        assert_eq!((unchanged.body.clone(), unchanged.etag.clone()), (next.body.clone(), next.etag.clone()));
        assert!(unchanged.chunks.iter().zip(&next.chunks).all(|(a, b)| a.deflate.as_ptr() == b.deflate.as_ptr()));
    }

    fn keys(k: &Kept) -> Vec<String> {
        match &k.layout.as_ref().unwrap().segments[1] {
            Segment::Run { items, .. } => items.iter().map(|(k, _)| k.to_string()).collect(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_least_recently_read_documents_go_first_when_over_the_cap() {
        let docs = Documents::new(10);
        let req = |path: &'static str| DocRequest { repository: "r", path, query: "", base_url: "b", headers: &[] };
        docs.insert(&req("/a"), &[], kept("aaaa", 1));
        docs.insert(&req("/b"), &[], kept("bbbb", 1));
        docs.find(&req("/a"));
        docs.insert(&req("/c"), &[], kept("cccc", 1));
        assert!(docs.find(&req("/b")).is_none(), "the oldest read went");
        assert!(docs.find(&req("/a")).is_some() && docs.find(&req("/c")).is_some());
        assert!(docs.size() <= 10);
    }

    #[test]
    fn appending_changes_the_validator_and_the_digest_of_the_whole() {
        let base = kept("created_at: x\n---\n", 1);
        let longer = base.extended(b"a 1.0 abc\n", 5);
        assert_eq!(&longer.body[..], b"created_at: x\n---\na 1.0 abc\n");
        assert_ne!(longer.etag, base.etag);
        let whole = kept("created_at: x\n---\na 1.0 abc\n", 9);
        assert_eq!(longer.digest, whole.digest);
        assert_eq!(longer.rendered_at, 5);
    }

    #[test]
    fn large_bodies_are_kept_gzipped_too() {
        let body = "{\"versions\":[".to_string() + &"\"1.0.0\",".repeat(2000) + "]}";
        let big = kept(&body, 1);
        let gz = big.gzip.as_ref().expect("a large body is compressed");
        assert!(gz.len() < body.len() / 10, "{} of {}", gz.len(), body.len());
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, body);
        assert_eq!(big.weight(), (body.len() + gz.len()) as u64);
    }
}

//! Documents in parts (contract 0.5.0's `keep.layout` and `render-parts`): a kept document that
//! shows many versions (a packument, a registration page, a version list) is written as the
//! bytes that show the package as a whole and runs of per-version items, so that after a change
//! the host asks for the changed versions' items only and splices them into the bytes it keeps.
//!
//! One renderer writes both forms, so they cannot differ: it writes into a [`PartedBody`] made
//! by [`PartedBody::whole`] for the first render (every item; [`PartedBody::finish`] gives the
//! body and its layout) or by [`PartedBody::changed`] for `render-parts` (every whole segment,
//! only the changed keys' items, every key's place; [`PartedBody::into_parts`]).
//!
//! ```text
//! body.write(b"{\"versions\":{");
//! body.run(b",", false);
//! for v in versions { body.item(&v.version, |out| write_entry(out, v))?; }
//! body.end_run();
//! body.write(b"}}");
//! ```
//!
//! Whole segments are always written between runs (empty ones too), so the number of whole
//! segments is the same in every render of the document, as the host's splice requires.

use std::collections::{HashMap, HashSet};

use crate::{Item, Layout, Parts, Run, Segment};

pub struct PartedBody {
    /// None: every item is rendered (the whole document). Some: only these keys' items.
    wanted: Option<Vec<String>>,
    /// The whole document so far (whole mode), or the open whole segment (changed mode).
    out: Vec<u8>,
    /// Where the open whole segment starts in `out` (whole mode).
    whole_start: usize,
    segments: Vec<Segment>,
    /// The open run: its separator, whether it leads, its items so far.
    run: Option<Run>,
    runs: usize,
    // Changed mode:
    wholes: Vec<Vec<u8>>,
    items: Vec<Item>,
    item_of: HashMap<String, usize>,
    order: Vec<String>,
    placed: HashSet<String>,
}

impl PartedBody {
    /// For a render of the whole document.
    pub fn whole() -> Self {
        Self::new(None)
    }

    /// For `render-parts`: only `keys`' items are rendered (a key with no item any more is
    /// dropped by the host, since it is not in the order).
    pub fn changed(keys: impl IntoIterator<Item = String>) -> Self {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort();
        keys.dedup();
        Self::new(Some(keys))
    }

    fn new(wanted: Option<Vec<String>>) -> Self {
        PartedBody {
            wanted,
            out: Vec::new(),
            whole_start: 0,
            segments: Vec::new(),
            run: None,
            runs: 0,
            wholes: Vec::new(),
            items: Vec::new(),
            item_of: HashMap::new(),
            order: Vec::new(),
            placed: HashSet::new(),
        }
    }

    /// The buffer whole-segment bytes go into (for `serde_json::to_writer`).
    pub fn out(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.run.is_none(), "whole bytes inside a run");
        &mut self.out
    }

    /// Writes bytes that show the package as a whole.
    pub fn write(&mut self, bytes: &[u8]) {
        self.out().extend_from_slice(bytes);
    }

    /// Ends the open whole segment and starts a run of items with `separator` between them
    /// (and before the first, when `leading`).
    pub fn run(&mut self, separator: &[u8], leading: bool) {
        assert!(self.run.is_none(), "runs do not nest");
        self.close_whole();
        self.run = Some(Run { separator: separator.to_vec(), leading, items: Vec::new() });
    }

    /// One item of the open run: `render` writes its bytes (without separators), and is called
    /// only if the item is wanted. A run lists each key at most once.
    pub fn item<E>(&mut self, key: &str, render: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let run = self.run.as_mut().expect("an item outside a run");
        match &self.wanted {
            None => {
                if !run.items.is_empty() || run.leading {
                    self.out.extend_from_slice(&run.separator);
                }
                let start = self.out.len();
                render(&mut self.out)?;
                run.items.push((key.to_string(), (self.out.len() - start) as u32));
            }
            Some(wanted) => {
                if self.runs == 0 {
                    // A run lists a key once: the first run's keys are the order so far.
                    self.order.push(key.to_string());
                } else if self.order.get(run.items.len()).is_some_and(|k| k == key) {
                    // A later run in the first run's order (the usual case): nothing to look up.
                } else {
                    if self.placed.is_empty() {
                        self.placed = self.order.iter().cloned().collect();
                    }
                    if self.placed.insert(key.to_string()) {
                        self.order.push(key.to_string());
                    }
                }
                // Counts this run's keys (their lengths are not needed in this mode).
                run.items.push((String::new(), 0));
                if wanted_in(wanted, key) {
                    let mut bytes = Vec::new();
                    render(&mut bytes)?;
                    let i = *self.item_of.entry(key.to_string()).or_insert_with(|| {
                        self.items.push(Item { key: key.to_string(), runs: Vec::new() });
                        self.items.len() - 1
                    });
                    let runs = &mut self.items[i].runs;
                    runs.resize(self.runs + 1, None);
                    runs[self.runs] = Some(bytes);
                }
            }
        }
        Ok(())
    }

    /// Whether `render-parts` wants this key's items (always, for a whole render).
    pub fn wants(&self, key: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| wanted_in(w, key))
    }

    /// Ends the open run.
    pub fn end_run(&mut self) {
        let run = self.run.take().expect("end_run without a run");
        self.segments.push(Segment::Run(run));
        self.runs += 1;
        self.whole_start = self.out.len();
    }

    fn close_whole(&mut self) {
        let len = self.out.len() - self.whole_start;
        self.segments.push(Segment::Whole(len as u32));
        if self.wanted.is_some() {
            self.wholes.push(std::mem::take(&mut self.out));
        }
        self.whole_start = self.out.len();
    }

    /// The whole document's body and layout.
    pub fn finish(mut self) -> (Vec<u8>, Layout) {
        assert!(self.wanted.is_none(), "finish is for whole renders; use into_parts");
        self.close_whole();
        (self.out, Layout { segments: self.segments })
    }

    /// What `render-parts` answers.
    pub fn into_parts(mut self) -> Parts {
        assert!(self.wanted.is_some(), "into_parts is for changed renders; use finish");
        self.close_whole();
        let runs = self.runs;
        for item in &mut self.items {
            item.runs.resize(runs, None);
        }
        Parts { whole: self.wholes, order: self.order, items: self.items }
    }
}

/// Whether `key` is one of the few wanted keys: compared in turn while they are few (a change
/// names one or two versions, and a set would hash every key of a long history).
fn wanted_in(wanted: &[String], key: &str) -> bool {
    wanted.iter().any(|w| w == key)
}

/// Splices `parts` into a body with `layout` the way the host does (the contract's rule), for
/// plugins' unit tests: a render of the changed parts spliced into the previous whole render
/// must equal a whole render of the new state.
pub fn splice(body: &[u8], layout: &Layout, parts: &Parts) -> Vec<u8> {
    let mut at = 0usize;
    let mut kept: Vec<HashMap<&str, &[u8]>> = Vec::new();
    for segment in &layout.segments {
        match segment {
            Segment::Whole(len) => at += *len as usize,
            Segment::Run(run) => {
                let mut items = HashMap::new();
                for (i, (key, len)) in run.items.iter().enumerate() {
                    if i > 0 || run.leading {
                        at += run.separator.len();
                    }
                    items.insert(key.as_str(), &body[at..at + *len as usize]);
                    at += *len as usize;
                }
                kept.push(items);
            }
        }
    }
    assert_eq!(at, body.len(), "the layout covers the body");
    let new: HashMap<&str, &Item> = parts.items.iter().map(|i| (i.key.as_str(), i)).collect();
    let (mut out, mut whole, mut run_i) = (Vec::new(), parts.whole.iter(), 0);
    for segment in &layout.segments {
        match segment {
            Segment::Whole(_) => out.extend_from_slice(whole.next().expect("a whole segment per layout's")),
            Segment::Run(run) => {
                let mut first = true;
                for key in &parts.order {
                    let bytes = match new.get(key.as_str()) {
                        Some(item) => item.runs[run_i].as_deref(),
                        None => kept[run_i].get(key.as_str()).copied(),
                    };
                    let Some(bytes) = bytes else { continue };
                    if !first || run.leading {
                        out.extend_from_slice(&run.separator);
                    }
                    first = false;
                    out.extend_from_slice(bytes);
                }
                run_i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"v":{A},"t":{"x":1,B}}` with items per version.
    fn render(body: &mut PartedBody, versions: &[&str], extra: &str) {
        let run = |body: &mut PartedBody, leading: bool, item: &dyn Fn(&str) -> String| {
            body.run(b",", leading);
            for v in versions {
                body.item(v, |out| -> Result<(), ()> {
                    out.extend_from_slice(item(v).as_bytes());
                    Ok(())
                })
                .unwrap();
            }
            body.end_run();
        };
        body.write(format!("{{\"n\":\"{extra}\",\"v\":{{").as_bytes());
        run(body, false, &|v| format!("\"{v}\":{{}}"));
        body.write(b"},\"t\":{\"x\":1");
        run(body, true, &|v| format!("\"{v}\":\"{extra}\""));
        body.write(b"}}");
    }

    fn whole(versions: &[&str], extra: &str) -> (Vec<u8>, Layout) {
        let mut body = PartedBody::whole();
        render(&mut body, versions, extra);
        body.finish()
    }

    #[test]
    fn a_whole_render_is_valid_json_with_a_layout_that_covers_it() {
        let (bytes, layout) = whole(&["1", "2"], "a");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(text, r#"{"n":"a","v":{"1":{},"2":{}},"t":{"x":1,"1":"a","2":"a"}}"#);
        assert_eq!(layout.segments.len(), 5, "whole, run, whole, run, whole");
        let total: usize = layout
            .segments
            .iter()
            .map(|s| match s {
                Segment::Whole(n) => *n as usize,
                Segment::Run(r) => {
                    r.items.iter().map(|(_, n)| *n as usize).sum::<usize>()
                        + r.separator.len() * (r.items.len() - usize::from(!r.leading))
                }
            })
            .sum();
        assert_eq!(total, bytes.len());
    }

    #[test]
    fn changed_parts_spliced_into_the_old_body_equal_a_whole_render() {
        let (old, layout) = whole(&["1", "2", "3"], "a");
        // "2" is removed, "4" added, "1" changed (its whole-package text too).
        let mut body = PartedBody::changed(["1".to_string(), "2".to_string(), "4".to_string()]);
        render(&mut body, &["1", "3", "4"], "b");
        let parts = body.into_parts();
        assert_eq!(parts.order, ["1", "3", "4"]);
        assert_eq!(parts.items.len(), 2, "only the wanted keys that still exist are rendered");
        let spliced = splice(&old, &layout, &parts);
        let (want, _) = whole(&["1", "3", "4"], "b");
        // "3" keeps its old bytes (rendered with "a"): that is the contract; a renderer whose
        // item bytes depend on whole-package state must name those keys as changed.
        let mut expected = String::from_utf8(want).unwrap();
        expected = expected.replace(r#""3":"b""#, r#""3":"a""#);
        assert_eq!(String::from_utf8(spliced).unwrap(), expected);
    }
}

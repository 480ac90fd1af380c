//! A version's README on the package page: Markdown rendered by pulldown-cmark (CommonMark plus
//! GitHub's tables, strikethrough and task lists), then sanitised by ammonia, because a README is
//! whatever the pusher wrote and the page runs under the registry's origin.
//!
//! ammonia keeps its safe subset of HTML (no `script`, `style`, `iframe`, `form`, no `on*`
//! attributes, no `style`) and only http(s)/mailto-like URL schemes, so `javascript:` links lose
//! their `href`. On top of that: relative URLs are dropped (the package's files are not served as
//! a site here, so `docs/x.md` or `img/logo.png` would point into the UI's own routes), and an
//! image keeps its `src` only when it is an https URL (no plain-http mixed content, no `data:`).

use std::sync::OnceLock;

use ammonia::{Builder, UrlRelative};
use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

/// READMEs longer than this are cut before rendering (a page, not an archive; bounds the work).
const MAX_README: usize = 512 * 1024;

/// The README's Markdown as safe HTML, or `None` when there is nothing to show.
pub fn render(markdown: &str) -> Option<String> {
    let markdown = markdown.trim();
    if markdown.is_empty() {
        return None;
    }
    let mut end = markdown.len().min(MAX_README);
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS | Options::ENABLE_FOOTNOTES;
    let mut unsafe_html = String::with_capacity(end * 3 / 2);
    // A Markdown image that could not load here (relative, http) becomes its alt text rather than
    // an empty <img>; images never nest, so one flag tracks the one being dropped.
    let mut dropping = false;
    let events = Parser::new_ext(&markdown[..end], options).filter(|event| match event {
        Event::Start(Tag::Image { dest_url, .. }) if !dest_url.starts_with("https://") => {
            dropping = true;
            false
        }
        Event::End(TagEnd::Image) if dropping => {
            dropping = false;
            false
        }
        _ => true,
    });
    html::push_html(&mut unsafe_html, events);
    Some(sanitiser().clean(&unsafe_html).to_string())
}

fn sanitiser() -> &'static Builder<'static> {
    static CLEAN: OnceLock<Builder<'static>> = OnceLock::new();
    CLEAN.get_or_init(|| {
        let mut b = Builder::default();
        b.url_relative(UrlRelative::Deny)
            // Task lists' checkboxes (disabled, as pulldown-cmark writes them).
            .add_tags(["input"])
            .add_tag_attributes("input", ["type", "checked", "disabled"])
            .add_tag_attributes("code", ["class"])
            .attribute_filter(|element, attribute, value| match (element, attribute) {
                ("img", "src") if !value.starts_with("https://") => None,
                ("input", "type") if value != "checkbox" => None,
                // `language-rust` and the like, for a reader's eye; nothing else.
                ("code", "class") if !value.starts_with("language-") => None,
                _ => Some(value.into()),
            });
        b
    })
}

#[cfg(test)]
mod tests {
    use super::render;

    const HOSTILE: &str = r#"# Title

<script>window.pwned=1</script>
<img src=x onerror="window.pwned=1">
<iframe src="https://example.com/frame"></iframe>
<a href="https://example.com" onclick="window.pwned=1">site</a>
<style>body{display:none}</style>
<form action="https://evil.example"><button>go</button></form>

[click](javascript:window.pwned=1) [data](data:text/html,<script>1</script>) [rel](docs/x.md)
[ok](https://example.com/docs)

![rel](img/logo.png) ![plain](http://example.com/a.png) ![good](https://example.com/b.png)

- [x] done
"#;

    #[test]
    fn hostile_markdown_loses_scripts_handlers_and_unsafe_urls() {
        let html = render(HOSTILE).unwrap();
        let lower = html.to_lowercase();
        for bad in
            ["<script", "onerror", "onclick", "<iframe", "<style", "<form", "javascript:", "data:", "window.pwned=1\""]
        {
            assert!(!lower.contains(bad), "{bad} survived in {html}");
        }
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains(r#"<a href="https://example.com/docs" rel="noopener noreferrer">ok</a>"#), "{html}");
        assert!(html.contains(r#"<img src="https://example.com/b.png" alt="good">"#), "{html}");
        assert!(!html.contains("img/logo.png") && !html.contains("docs/x.md"), "relative URLs dropped: {html}");
        assert!(!html.contains("http://example.com/a.png"), "plain-http images dropped: {html}");
        assert!(html.contains("<p>rel plain <img"), "a dropped Markdown image leaves its alt text: {html}");
        assert!(html.contains(r#"type="checkbox""#), "task lists keep their checkboxes: {html}");
    }

    #[test]
    fn markdown_renders_headings_code_and_tables() {
        let html = render("## Use\n\n```rust\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n").unwrap();
        assert!(html.contains("<h2>Use</h2>"), "{html}");
        assert!(html.contains(r#"<code class="language-rust">fn main() {}"#), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>2</td>"), "{html}");
        assert_eq!(render("  \n"), None);
    }

    #[test]
    fn a_long_readme_is_cut_on_a_char_boundary() {
        let long = "é".repeat(super::MAX_README);
        assert!(render(&long).unwrap().len() <= super::MAX_README + 16);
    }
}

//! The parts of a `go.mod` file Sluice needs: the `module` path and the `require` directives.
//!
//! go.mod is line-oriented: a directive is a verb and its arguments on one line, or a verb and a
//! parenthesised block with one set of arguments per line; `//` starts a comment; arguments may be
//! Go strings ("..." or `...`). Everything else (go, toolchain, replace, exclude, retract) is
//! skipped, so a newer go.mod with unknown directives still reads.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub path: String,
    pub version: String,
    /// Marked `// indirect`: needed by a dependency, not imported by this module.
    pub indirect: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMod {
    pub module: String,
    pub requires: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoModError(pub String);

impl fmt::Display for GoModError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
}

/// Splits a line into tokens and the comment after `//` (if any).
fn tokenize(line: &str, number: usize) -> Result<(Vec<Token>, &str), GoModError> {
    let mut tokens = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok((tokens, ""));
        }
        if let Some(comment) = rest.strip_prefix("//") {
            return Ok((tokens, comment.trim()));
        }
        let first = rest.chars().next().unwrap_or_default();
        match first {
            '(' => {
                tokens.push(Token::Open);
                rest = &rest[1..];
            }
            ')' => {
                tokens.push(Token::Close);
                rest = &rest[1..];
            }
            '"' | '`' => {
                let (word, after) = quoted(rest, number)?;
                tokens.push(Token::Word(word));
                rest = after;
            }
            _ => {
                let end =
                    rest.find(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"' | '`')).unwrap_or(rest.len());
                let end = rest[..end].find("//").unwrap_or(end);
                tokens.push(Token::Word(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
    }
}

/// Reads a Go string literal at the start of `s`; returns its value and what follows it.
fn quoted(s: &str, number: usize) -> Result<(String, &str), GoModError> {
    let unterminated = || GoModError(format!("go.mod line {number}: unterminated string"));
    if let Some(body) = s.strip_prefix('`') {
        let end = body.find('`').ok_or_else(unterminated)?;
        return Ok((body[..end].to_string(), &body[end + 1..]));
    }
    let mut out = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[1 + i + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                _ => return Err(GoModError(format!("go.mod line {number}: unsupported escape in string"))),
            },
            c => out.push(c),
        }
    }
    Err(unterminated())
}

fn words(tokens: &[Token]) -> Option<Vec<&str>> {
    tokens.iter().map(|t| if let Token::Word(w) = t { Some(w.as_str()) } else { None }).collect()
}

fn is_indirect(comment: &str) -> bool {
    comment == "indirect" || comment.starts_with("indirect;")
}

/// Parses a go.mod file.
pub fn parse(text: &str) -> Result<GoMod, GoModError> {
    let mut module = None;
    let mut requires = Vec::new();
    let mut block: Option<(String, usize)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let (tokens, comment) = tokenize(line, number)?;
        if tokens.is_empty() {
            continue;
        }
        let (verb, args): (String, Vec<&str>) = match &block {
            Some(_) if tokens == [Token::Close] => {
                block = None;
                continue;
            }
            Some((verb, _)) => {
                let args = words(&tokens)
                    .ok_or_else(|| GoModError(format!("go.mod line {number}: unexpected parenthesis")))?;
                (verb.clone(), args)
            }
            None => {
                let Some(Token::Word(verb)) = tokens.first() else {
                    return Err(GoModError(format!("go.mod line {number}: expected a directive")));
                };
                if tokens.len() == 2 && tokens[1] == Token::Open {
                    block = Some((verb.clone(), number));
                    continue;
                }
                let args = words(&tokens[1..])
                    .ok_or_else(|| GoModError(format!("go.mod line {number}: unexpected parenthesis")))?;
                (verb.clone(), args)
            }
        };
        match verb.as_str() {
            "module" => {
                let [path] = args[..] else {
                    return Err(GoModError(format!("go.mod line {number}: usage: module module/path")));
                };
                if module.is_some() {
                    return Err(GoModError(format!("go.mod line {number}: repeated module directive")));
                }
                module = Some(path.to_string());
            }
            "require" => {
                let [path, version] = args[..] else {
                    return Err(GoModError(format!("go.mod line {number}: usage: require module/path v1.2.3")));
                };
                requires.push(Requirement {
                    path: path.into(),
                    version: version.into(),
                    indirect: is_indirect(comment),
                });
            }
            _ => {}
        }
    }
    if let Some((verb, opened)) = block {
        return Err(GoModError(format!("go.mod line {opened}: {verb} block is never closed")));
    }
    let module = module.ok_or_else(|| GoModError("go.mod has no module directive".into()))?;
    Ok(GoMod { module, requires })
}

/// A go.mod argument as Go writes it (`modfile.AutoQuote`): quoted only when it holds a space,
/// quote, bracket, comma or comment marker. Valid module paths never need quotes.
pub fn auto_quote(s: &str) -> String {
    let must_quote = s.is_empty()
        || s.contains("//")
        || s.contains("/*")
        || s.chars().any(|c| c.is_whitespace() || "\"'`()[]{},".contains(c));
    if !must_quote {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_module_and_requires() {
        let text = r#"// The widget module.
module "example.com/Widget/v2" // quoted, with a capital

go 1.21

require example.com/single v1.0.0
require (
	example.com/a v1.2.3
	example.com/b v0.0.0-20200101000000-abcdefabcdef // indirect
	`example.com/c` v2.0.0+incompatible // indirect; comment
)

replace example.com/a => ../a
exclude (
	example.com/x v1.0.0
)
retract [v2.0.0, v2.0.5] // broken
toolchain go1.22.0
"#;
        let m = parse(text).unwrap();
        assert_eq!(m.module, "example.com/Widget/v2");
        let reqs: Vec<_> = m.requires.iter().map(|r| (r.path.as_str(), r.version.as_str(), r.indirect)).collect();
        assert_eq!(
            reqs,
            vec![
                ("example.com/single", "v1.0.0", false),
                ("example.com/a", "v1.2.3", false),
                ("example.com/b", "v0.0.0-20200101000000-abcdefabcdef", true),
                ("example.com/c", "v2.0.0+incompatible", true),
            ]
        );
    }

    #[test]
    fn rejects_broken_files() {
        assert!(parse("go 1.21\n").unwrap_err().0.contains("no module directive"));
        assert!(parse("module a\nmodule b\n").unwrap_err().0.contains("repeated"));
        assert!(parse("module \"example.com/m\n").unwrap_err().0.contains("unterminated"));
        assert!(parse("module example.com/m\nrequire (\n a v1.0.0\n").unwrap_err().0.contains("never closed"));
        assert!(parse("module example.com/m\nrequire a\n").unwrap_err().0.contains("usage"));
        assert_eq!(parse("module example.com/m//c\n").unwrap().module, "example.com/m");
    }
}

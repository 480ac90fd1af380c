//! The rules language of a pipeline file's `rules: - if:` (GitLab CI's subset): variables compared
//! with `==`, `!=` (strings) and `=~`, `!~` (`/regex/`, with an `i` flag), a bare `$VAR` (or
//! `${VAR}`) true when set and non-empty, combined with `&&`, `||` (`&&` binds tighter) and
//! parentheses. Parsed once when the pipeline file is read ([`super::config`]), evaluated against a
//! push's variables when its pipeline is planned.

use std::collections::BTreeMap;

/// A rule's `if:` expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Var(String),
    Compare { var: String, negate: bool, value: String },
    Matches { var: String, negate: bool, regex: regex::Regex },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Var(String),
    Str(String),
    Regex(String, String),
    Eq,
    Ne,
    Match,
    NoMatch,
    And,
    Or,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1
            }
            ')' => {
                out.push(Token::Close);
                i += 1
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                let braced = chars.get(j) == Some(&'{');
                if braced {
                    j += 1;
                }
                let name_start = j;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[name_start..j].iter().collect();
                if name.is_empty() {
                    return Err("`$` must be followed by a variable name".into());
                }
                if braced {
                    if chars.get(j) != Some(&'}') {
                        return Err("unclosed `${`".into());
                    }
                    j += 1;
                }
                out.push(Token::Var(name));
                i = j;
            }
            '"' | '\'' => {
                let end = chars[i + 1..].iter().position(|&d| d == c).ok_or("unclosed string")?;
                out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '/' => {
                let mut j = i + 1;
                let mut pattern = String::new();
                while j < chars.len() && chars[j] != '/' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        // `\/` is a literal slash; other escapes belong to the regex.
                        if chars[j + 1] != '/' {
                            pattern.push('\\');
                        }
                        pattern.push(chars[j + 1]);
                        j += 2;
                    } else {
                        pattern.push(chars[j]);
                        j += 1;
                    }
                }
                if j >= chars.len() {
                    return Err("unclosed regex".into());
                }
                j += 1;
                let mut flags = String::new();
                while j < chars.len() && chars[j].is_ascii_alphabetic() {
                    flags.push(chars[j]);
                    j += 1;
                }
                out.push(Token::Regex(pattern, flags));
                i = j;
            }
            _ => {
                let tok = match two.as_str() {
                    "==" => Token::Eq,
                    "!=" => Token::Ne,
                    "=~" => Token::Match,
                    "!~" => Token::NoMatch,
                    "&&" => Token::And,
                    "||" => Token::Or,
                    _ => return Err(format!("unexpected `{c}`")),
                };
                out.push(tok);
                i += 2;
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.atom()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }
    fn atom(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(e),
                    _ => Err("missing `)`".into()),
                }
            }
            Some(Token::Var(var)) => match self.peek() {
                Some(Token::Eq | Token::Ne) => {
                    let negate = self.next() == Some(Token::Ne);
                    match self.next() {
                        Some(Token::Str(value)) => Ok(Expr::Compare { var, negate, value }),
                        _ => Err(format!("`${var}` must be compared with a quoted string")),
                    }
                }
                Some(Token::Match | Token::NoMatch) => {
                    let negate = self.next() == Some(Token::NoMatch);
                    match self.next() {
                        Some(Token::Regex(pattern, flags)) => {
                            let pattern = if flags.contains('i') { format!("(?i){pattern}") } else { pattern };
                            let regex = regex::Regex::new(&pattern).map_err(|e| e.to_string())?;
                            Ok(Expr::Matches { var, negate, regex })
                        }
                        _ => Err(format!("`${var}` must be matched against a /regex/")),
                    }
                }
                _ => Ok(Expr::Var(var)),
            },
            other => Err(format!("expected a variable or `(`, found {other:?}")),
        }
    }
}

impl Expr {
    pub fn parse(s: &str) -> Result<Expr, String> {
        let mut p = Parser { tokens: tokenize(s)?, pos: 0 };
        let e = p.or()?;
        if p.pos < p.tokens.len() {
            return Err(format!("unexpected {:?}", p.tokens[p.pos]));
        }
        Ok(e)
    }

    pub fn eval(&self, vars: &BTreeMap<String, String>) -> bool {
        let get = |v: &str| vars.get(v).map(String::as_str);
        match self {
            Expr::Var(v) => get(v).is_some_and(|s| !s.is_empty()),
            Expr::Compare { var, negate, value } => (get(var) == Some(value.as_str())) != *negate,
            Expr::Matches { var, negate, regex } => get(var).is_some_and(|s| regex.is_match(s)) != *negate,
            Expr::And(a, b) => a.eval(vars) && b.eval(vars),
            Expr::Or(a, b) => a.eval(vars) || b.eval(vars),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn eval(expr: &str, pairs: &[(&str, &str)]) -> bool {
        Expr::parse(expr).unwrap().eval(&vars(pairs))
    }

    #[test]
    fn strings_compare_equal_and_not_equal() {
        assert!(eval(r#"$NAME == "left-pad""#, &[("NAME", "left-pad")]));
        assert!(!eval(r#"$NAME == "left-pad""#, &[("NAME", "right-pad")]));
        assert!(eval(r#"$NAME != 'left-pad'"#, &[("NAME", "right-pad")]));
        // An unset variable equals no string, so `!=` holds for it.
        assert!(!eval(r#"$NAME == "x""#, &[]));
        assert!(eval(r#"${NAME} != "x""#, &[]));
    }

    #[test]
    fn regexes_match_and_do_not_match() {
        assert!(eval(r"$NAME =~ /^@acme\//", &[("NAME", "@acme/x")]));
        assert!(!eval(r"$NAME =~ /^@acme\//", &[("NAME", "@other/x")]));
        assert!(eval(r"$VERSION !~ /-/", &[("VERSION", "1.0.0")]));
        assert!(!eval(r"$VERSION !~ /-/", &[("VERSION", "1.0.0-rc.1")]));
        assert!(eval(r"$NAME =~ /^LEFT/i", &[("NAME", "left-pad")]));
        assert!(!eval(r"$NAME =~ /^LEFT/", &[("NAME", "left-pad")]));
        // Other escapes belong to the regex.
        assert!(eval(r"$VERSION =~ /^\d+\.0$/", &[("VERSION", "12.0")]));
    }

    #[test]
    fn a_bare_variable_is_true_when_set_and_not_empty() {
        assert!(eval("$CI", &[("CI", "true")]));
        assert!(!eval("$CI", &[("CI", "")]));
        assert!(!eval("$CI", &[]));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let v = [("A", "1"), ("B", ""), ("C", "1")];
        // `A || B && C` is `A || (B && C)`.
        assert!(eval("$A || $B && $C", &v));
        assert!(!eval("($A || $B) && $B", &v));
        assert!(eval("($A || $B) && $C", &v));
        assert!(!eval("$B || $B && $C", &v));
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        let err = |s: &str| Expr::parse(s).unwrap_err();
        assert!(err("$A ==").contains("quoted string"), "{}", err("$A =="));
        assert!(err("$A =~ \"x\"").contains("/regex/"));
        assert!(err("$A =~ /(/").contains("regex"), "{}", err("$A =~ /(/"));
        assert!(err("($A").contains("missing `)`"));
        assert!(err("$").contains("variable name"));
        assert!(err("${A").contains("unclosed `${`"));
        assert!(err("$A == \"x").contains("unclosed string"));
        assert!(err("$A =~ /x").contains("unclosed regex"));
        assert!(err("$A $B").contains("unexpected"));
        assert!(err("$A & $B").contains("unexpected `&`"));
    }
}

//! `Gem::Platform`: a platform string (`x86_64-linux`, `java`, `arm64-darwin-21`) split into the
//! cpu, os and version that RubyGems compares platforms by. A Marshal gemspec carries the
//! platform of a platform gem as this object (a String there makes `spec.platform ==
//! Gem::Platform.new("java")` false), so Sluice splits it the way `Gem::Platform.new` does.

/// The parts of a platform, as `Gem::Platform#to_a` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub cpu: Option<String>,
    pub os: String,
    pub version: Option<String>,
}

/// `/\d+(\.\d+)?$/`: ends in a digit.
fn ends_in_number(s: &str) -> bool {
    s.ends_with(|c: char| c.is_ascii_digit())
}

/// `/^\d+(\.\d+)?$/`: a whole version number such as `21` or `2.10`.
fn is_number(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let first = parts.next();
    match (parts.next(), parts.next()) {
        (None, _) => ok(first),
        (Some(second), None) => ok(first) && ok(Some(second)),
        _ => false,
    }
}

/// Digits at the start of `s` (`(\d+)?` after a matched word), none when there are none.
fn leading_digits(s: &str) -> Option<String> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// `\w+` at the start of `s`.
fn leading_word(s: &str) -> Option<String> {
    let word: String = s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    (!word.is_empty()).then_some(word)
}

/// The os and version an os string means (the `case os` of `Gem::Platform#initialize`).
fn os_and_version(os: &str, cpu: &mut Option<String>) -> (String, Option<String>) {
    let after = |word: &str| os.find(word).map(|i| &os[i + word.len()..]);
    let plain = |name: &str| (name.to_string(), None);
    if let Some(rest) = after("aix") {
        return ("aix".into(), leading_digits(rest));
    }
    if os.contains("cygwin") {
        return plain("cygwin");
    }
    if let Some(rest) = after("darwin") {
        return ("darwin".into(), leading_digits(rest));
    }
    if os == "macruby" {
        return plain("macruby");
    }
    if let Some(rest) = after("freebsd") {
        return ("freebsd".into(), leading_digits(rest));
    }
    if os == "java" || os == "jruby" {
        return plain("java");
    }
    if let Some(rest) = os.strip_prefix("java") {
        let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        return ("java".into(), Some(v));
    }
    if let Some(rest) = os.strip_prefix("dalvik") {
        if rest.chars().all(|c| c.is_ascii_digit()) {
            return ("dalvik".into(), leading_digits(rest));
        }
    }
    if os == "dotnet" {
        return plain("dotnet");
    }
    if let Some(rest) = os.strip_prefix("dotnet") {
        let v: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        return ("dotnet".into(), Some(v));
    }
    if let Some(rest) = after("linux") {
        return ("linux".into(), leading_word(rest.strip_prefix('-').unwrap_or(rest)));
    }
    if os.contains("mingw32") {
        return plain("mingw32");
    }
    if let Some(rest) = after("mingw") {
        return ("mingw".into(), leading_word(rest.strip_prefix('-').unwrap_or(rest)));
    }
    if let Some(i) = os.find("mswin") {
        let digits = leading_digits(&os[i + 5..]);
        if let Some(d) = digits {
            let name = format!("mswin{d}");
            let rest = &os[i + name.len()..];
            let version = rest.strip_prefix('_').and_then(leading_digits);
            if cpu.is_none() && name.ends_with("32") {
                *cpu = Some("x86".into());
            }
            return (name, version);
        }
    }
    if os.contains("netbsdelf") {
        return plain("netbsdelf");
    }
    if let Some(rest) = after("openbsd") {
        return ("openbsd".into(), dotted(rest));
    }
    if let Some(rest) = after("solaris") {
        return ("solaris".into(), dotted(rest));
    }
    if os.contains("wasi") {
        return plain("wasi");
    }
    plain("unknown")
}

/// `(\d+\.\d+)?` at the start of `s`.
fn dotted(s: &str) -> Option<String> {
    let (major, rest) = s.split_once('.')?;
    let minor = leading_digits(rest)?;
    (!major.is_empty() && major.chars().all(|c| c.is_ascii_digit())).then(|| format!("{major}.{minor}"))
}

impl Platform {
    /// `Gem::Platform.new(string)`.
    pub fn parse(platform: &str) -> Platform {
        let mut parts: Vec<String> = platform.split('-').map(str::to_string).collect();
        // Reassemble `x86_64-linux-musl`-style triples whose last part is not a version.
        if parts.len() > 2 && !parts.last().is_some_and(|l| ends_in_number(l)) {
            let extra = parts.pop().unwrap_or_default();
            if let Some(last) = parts.last_mut() {
                last.push('-');
                last.push_str(&extra);
            }
        }
        let first = parts.remove(0);
        let mut cpu = Some(if first.len() == 4 && first.starts_with('i') && first.ends_with("86") {
            "x86".to_string()
        } else {
            first.clone()
        });
        if parts.len() == 2 && is_number(&parts[1]) {
            return Platform { cpu, os: parts[0].clone(), version: Some(parts[1].clone()) };
        }
        let os = match parts.first() {
            Some(os) => os.clone(),
            None => {
                // A bare os such as `java` (old JRuby gems): no cpu.
                cpu = None;
                first
            }
        };
        let (os, version) = os_and_version(&os, &mut cpu);
        Platform { cpu, os, version }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (Option<&'static str>, &'static str, Option<&'static str>) {
        let p = Platform::parse(s);
        (p.cpu.map(|c| &*c.leak()), p.os.leak(), p.version.map(|v| &*v.leak()))
    }

    /// What `Gem::Platform.new(s).to_a` gives in Ruby 3.1's RubyGems.
    #[test]
    fn splits_like_rubygems() {
        assert_eq!(parts("java"), (None, "java", None));
        assert_eq!(parts("x86_64-linux"), (Some("x86_64"), "linux", None));
        assert_eq!(parts("x86_64-linux-musl"), (Some("x86_64"), "linux", Some("musl")));
        assert_eq!(parts("aarch64-linux-gnu"), (Some("aarch64"), "linux", Some("gnu")));
        assert_eq!(parts("arm64-darwin-21"), (Some("arm64"), "darwin", Some("21")));
        assert_eq!(parts("x86_64-darwin19"), (Some("x86_64"), "darwin", Some("19")));
        assert_eq!(parts("universal-darwin"), (Some("universal"), "darwin", None));
        assert_eq!(parts("x64-mingw32"), (Some("x64"), "mingw32", None));
        assert_eq!(parts("x64-mingw-ucrt"), (Some("x64"), "mingw", Some("ucrt")));
        assert_eq!(parts("i386-mswin32"), (Some("x86"), "mswin32", None));
        assert_eq!(parts("x86-mswin32_60"), (Some("x86"), "mswin32", Some("60")));
        assert_eq!(parts("universal-java-11"), (Some("universal"), "java", Some("11")));
        assert_eq!(parts("x86_64-freebsd13"), (Some("x86_64"), "freebsd", Some("13")));
        assert_eq!(parts("sparc-solaris2.10"), (Some("sparc"), "solaris", Some("2.10")));
        assert_eq!(parts("x86_64-weird"), (Some("x86_64"), "unknown", None));
    }
}

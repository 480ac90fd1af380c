//! Real `gem` and `bundle` for the end-to-end tests: gems built with `gem build`, and commands
//! isolated from the machine's own Ruby configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, Server};

/// The repository the RubyGems tests publish to.
pub const REPO: &str = "rubygems";

/// Writes a gem's sources into `dir/NAME` and builds it with the real `gem build`.
pub fn build_gem(dir: &Path, name: &str, version: &str, platform: Option<&str>, deps: &[(&str, &str)]) -> PathBuf {
    let src = dir.join(format!("src-{name}-{version}-{}", platform.unwrap_or("ruby")));
    std::fs::create_dir_all(src.join("lib")).unwrap();
    let module = name.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>();
    std::fs::write(
        src.join("lib").join(format!("{name}.rb")),
        format!("module {module}\n  VERSION = \"{version}\"\nend\n"),
    )
    .unwrap();
    let mut gemspec = format!(
        "Gem::Specification.new do |s|\n  s.name = {name:?}\n  s.version = {version:?}\n  s.summary = \"Test gem {name}\"\n  s.authors = [\"Sluice\"]\n  s.license = \"MIT\"\n  s.files = [\"lib/{name}.rb\"]\n"
    );
    for (dep, req) in deps {
        gemspec.push_str(&format!("  s.add_runtime_dependency {dep:?}, {req:?}\n"));
    }
    if let Some(p) = platform {
        gemspec.push_str(&format!("  s.platform = {p:?}\n"));
    }
    gemspec.push_str("end\n");
    std::fs::write(src.join(format!("{name}.gemspec")), gemspec).unwrap();
    let (ok, _, err) = run(ruby_cmd("gem", dir).arg("build").arg(format!("{name}.gemspec")).current_dir(&src));
    assert!(ok, "gem build failed: {err}");
    let file = match platform {
        Some(p) => format!("{name}-{version}-{p}.gem"),
        None => format!("{name}-{version}.gem"),
    };
    let path = src.join(&file);
    assert!(path.exists(), "gem build made {file}");
    path
}

/// A `gem`/`bundle` command isolated from the machine's own configuration: its HOME (and so its
/// ~/.gemrc, caches and credentials) is a folder of the test.
pub fn ruby_cmd(tool: &str, work: &Path) -> Command {
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = Command::new(tool);
    cmd.env("HOME", &home)
        .env("GEM_SPEC_CACHE", home.join("spec-cache"))
        .env("BUNDLE_USER_HOME", home.join(".bundle"))
        .env("BUNDLE_APP_CONFIG", home.join(".bundle-app"))
        .env_remove("GEM_HOST_API_KEY")
        .env_remove("GEM_HOME")
        .env_remove("GEM_PATH")
        .env_remove("BUNDLE_GEMFILE")
        .env_remove("RUBYOPT");
    cmd
}

pub fn push(server: &Server, gem: &Path, key: &str) -> (bool, String) {
    let (ok, out, err) = run(ruby_cmd("gem", &server.work)
        .arg("push")
        .arg(gem)
        .arg("--host")
        .arg(server.repo_url(REPO))
        .env("GEM_HOST_API_KEY", key));
    (ok, out + &err)
}

pub fn gem_install(server: &Server, name: &str, dir: &Path) -> (bool, String) {
    gem_install_from(&server.work, &server.repo_url(REPO), name, dir)
}

/// `gem install NAME` from `source` only, into `dir`, with the `gem` caches of `work`.
pub fn gem_install_from(work: &Path, source: &str, name: &str, dir: &Path) -> (bool, String) {
    let (ok, out, err) = run(ruby_cmd("gem", work)
        .args(["install", name, "--clear-sources", "--source", source])
        .arg("--install-dir")
        .arg(dir)
        .arg("--no-document"));
    (ok, out + &err)
}

/// A Bundler project in `app` whose Gemfile has `source` as its only source and these gems
/// (with a requirement or none), and `bundle` commands in it: its gems go to `app/bundle`, and
/// Bundler's caches (the compact index it resolved with) to `app/home`, so each project starts
/// with fresh caches.
pub struct BundleApp {
    pub dir: PathBuf,
}

impl BundleApp {
    pub fn new(app: &Path, source: &str, gems: &[(&str, Option<&str>)]) -> BundleApp {
        std::fs::create_dir_all(app).unwrap();
        let mut gemfile = format!("source {source:?}\n\n");
        for (name, requirement) in gems {
            match requirement {
                Some(r) => gemfile.push_str(&format!("gem {name:?}, {r:?}\n")),
                None => gemfile.push_str(&format!("gem {name:?}\n")),
            }
        }
        std::fs::write(app.join("Gemfile"), gemfile).unwrap();
        BundleApp { dir: app.to_path_buf() }
    }

    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let (ok, out, err) = run(ruby_cmd("bundle", &self.dir)
            .args(args)
            .current_dir(&self.dir)
            .env("BUNDLE_GEMFILE", self.dir.join("Gemfile"))
            .env("BUNDLE_PATH", self.dir.join("bundle")));
        (ok, out + &err)
    }

    /// The `NAME (VERSION)` entries of the lockfile `bundle install` wrote.
    pub fn locked(&self) -> String {
        std::fs::read_to_string(self.dir.join("Gemfile.lock")).unwrap_or_default()
    }
}

//! A real nuget.exe client (5.8, under mono; `.ci/install/nuget.sh` installs it) for the
//! end-to-end tests, and the raw push request it sends.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{require_tool, run, Server};

/// A nuget.exe session with its own HOME, so caches and config never leak between tests.
pub struct NuGet {
    pub home: PathBuf,
    pub source: String,
}

impl NuGet {
    pub fn new(server: &Server, name: &str) -> NuGet {
        require_tool("nuget");
        require_tool("mono");
        let home = server.work.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        NuGet { home, source: format!("{}/v3/index.json", server.repo_url("nuget")) }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nuget");
        cmd.args(args)
            .arg("-NonInteractive")
            .env("HOME", &self.home)
            .env_remove("NUGET_PACKAGES")
            .current_dir(&self.home);
        cmd
    }

    /// Runs nuget.exe: (success, stdout and stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let (ok, stdout, stderr) = run(&mut self.command(args));
        (ok, format!("{stdout}\n{stderr}"))
    }

    /// Runs a command that must succeed; returns its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out) = self.run(args);
        assert!(ok, "nuget {args:?} failed:\n{out}");
        out
    }

    /// Packs `nuspec` (written into `folder`, beside the files it names) with `nuget pack`.
    pub fn pack_nuspec(&self, folder: &Path, file_name: &str, nuspec: &str) -> PathBuf {
        std::fs::create_dir_all(folder).unwrap();
        let nuspec_path = folder.join(file_name);
        std::fs::write(&nuspec_path, nuspec).unwrap();
        let out = self.ok(&["pack", nuspec_path.to_str().unwrap(), "-OutputDirectory", folder.to_str().unwrap()]);
        std::fs::read_dir(folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "nupkg"))
            .unwrap_or_else(|| panic!("nuget pack made no .nupkg:\n{out}"))
    }

    /// Writes a nuspec with one content file and packs it with `nuget pack`.
    pub fn pack(&self, dir: &Path, id: &str, version: &str, dependencies: &str) -> PathBuf {
        let folder = dir.join(format!("{id}-{version}"));
        std::fs::create_dir_all(folder.join("content")).unwrap();
        std::fs::write(folder.join("content").join(format!("{id}.txt")), format!("{id} {version}")).unwrap();
        let nuspec = format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata>
    <id>{id}</id>
    <version>{version}</version>
    <authors>Sluice Tests</authors>
    <description>{id}, a package of the Sluice end-to-end tests.</description>
    <license type="expression">MIT</license>
    <projectUrl>https://example.com/{id}</projectUrl>
    <tags>sluice test</tags>
    <dependencies>{dependencies}</dependencies>
  </metadata>
  <files><file src="content/**" target="content" /></files>
</package>"#
        );
        self.pack_nuspec(&folder, &format!("{id}.nuspec"), &nuspec)
    }

    pub fn push(&self, nupkg: &Path, api_key: &str) -> (bool, String) {
        self.run(&["push", nupkg.to_str().unwrap(), "-Source", &self.source, "-ApiKey", api_key])
    }

    pub fn install(&self, id: &str, version: &str, output: &Path) -> String {
        let output = output.to_str().unwrap();
        self.ok(&["install", id, "-Version", version, "-Source", &self.source, "-OutputDirectory", output])
    }
}

/// `PUT /nuget/api/v2/package` as nuget.exe sends it: the package as a multipart file part.
pub fn raw_push(server: &Server, api_key: &str, package: &[u8]) -> (u16, String) {
    let boundary = "sluice-test-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: form-data; name=package; filename=package.nupkg\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(package);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = server
        .http()
        .put(format!("{}/api/v2/package", server.repo_url("nuget")))
        .header("X-NuGet-ApiKey", api_key)
        .header("Content-Type", format!("multipart/form-data; boundary=\"{boundary}\""))
        .body(body)
        .send()
        .expect("PUT package");
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

//! Builds npm package tarballs in the shapes the public registry holds, byte for byte the way
//! their packers write them, so tests publish them with the real `npm publish FILE.tgz`:
//! `@types/*` packages (top folder named after the package, `node/` in `@types/node`), tarballs
//! packed from `git archive` (a pax global header with the commit, then `owner-repo-commit/`),
//! and hostile ones (symbolic link chains) that must be refused.

use flate2::write::GzEncoder;
use flate2::Compression;
use std::path::{Path, PathBuf};

/// One tar entry to write.
enum Entry {
    File(String, Vec<u8>, u32),
    Dir(String),
    Symlink(String, String),
    PaxGlobal(Vec<u8>),
}

/// A tarball under construction; entries are written in the order they are added.
pub struct Tarball {
    entries: Vec<Entry>,
}

impl Tarball {
    pub fn new() -> Tarball {
        Tarball { entries: Vec::new() }
    }

    /// A regular file (mode 0644).
    pub fn file(mut self, path: &str, data: impl AsRef<[u8]>) -> Self {
        self.entries.push(Entry::File(path.to_string(), data.as_ref().to_vec(), 0o644));
        self
    }

    /// A folder entry (`git archive` writes one for every folder, trailing `/`).
    pub fn dir(mut self, path: &str) -> Self {
        self.entries.push(Entry::Dir(path.to_string()));
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Symlink(path.to_string(), target.to_string()));
        self
    }

    /// The pax global header `git archive` writes first: `comment=<commit id>`.
    pub fn git_commit_header(mut self, commit: &str) -> Self {
        let record = format!(" comment={commit}\n");
        // A pax record starts with its own length in decimal, that length included.
        let mut len = record.len() + 2;
        if (len + 1).to_string().len() > len.to_string().len() {
            len += 1;
        }
        self.entries.push(Entry::PaxGlobal(format!("{len}{record}").into_bytes()));
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for entry in self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(1_700_000_000);
            match entry {
                Entry::File(path, data, mode) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, &data[..]).unwrap();
                }
                Entry::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
                Entry::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    // Written raw: the tar crate refuses `..` in link names it sets itself.
                    header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
                Entry::PaxGlobal(data) => {
                    header.set_entry_type(tar::EntryType::XGlobalHeader);
                    header.set_mode(0o666);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, "pax_global_header", &data[..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    /// Writes the tarball as `dir/file_name` and returns its path.
    pub fn write(self, dir: &Path, file_name: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(file_name);
        std::fs::write(&path, self.build()).unwrap();
        path
    }
}

impl Default for Tarball {
    fn default() -> Self {
        Self::new()
    }
}

/// A `@types/NAME` package as DefinitelyTyped publishes it: everything under `NAME/` (so
/// `@types/node` has `node/package.json`), type declarations and no code.
pub fn types_package(name: &str, version: &str) -> Tarball {
    let manifest = serde_json::json!({
        "name": format!("@types/{name}"),
        "version": version,
        "description": format!("TypeScript definitions for {name}"),
        "license": "MIT",
        "main": "",
        "types": "index.d.ts",
        "typesPublisherContentHash": "0f3b4c3d",
        "typeScriptVersion": "4.5",
    });
    Tarball::new()
        .file(&format!("{name}/LICENSE"), "MIT License\n")
        .file(&format!("{name}/README.md"), format!("# Installation\n> `npm install --save @types/{name}`\n"))
        .file(&format!("{name}/index.d.ts"), types_declaration(name, version))
        .file(&format!("{name}/package.json"), serde_json::to_string_pretty(&manifest).unwrap())
}

pub fn types_declaration(name: &str, version: &str) -> String {
    format!("// Type definitions for {name} {version}\ndeclare module \"{name}\" {{ export const version: string; }}\n")
}

/// A package packed from `git archive --prefix=TOP/`: the pax header with the commit, a folder
/// entry for every folder, and the files (as `busboy@1.6.0` has `mscdex-busboy-9aadb7a/`).
pub fn git_archive_package(name: &str, version: &str, top: &str, commit: &str) -> Tarball {
    let manifest = serde_json::json!({
        "name": name,
        "version": version,
        "main": "./lib/index.js",
        "license": "MIT",
        "engines": {"node": ">=10.16.0"},
    });
    Tarball::new()
        .git_commit_header(commit)
        .dir(&format!("{top}/"))
        .file(&format!("{top}/.gitignore"), "node_modules\n")
        .file(&format!("{top}/LICENSE"), "MIT\n")
        .dir(&format!("{top}/lib/"))
        .file(&format!("{top}/lib/index.js"), git_archive_index_js(name, version))
        .file(&format!("{top}/package.json"), serde_json::to_string_pretty(&manifest).unwrap())
}

pub fn git_archive_index_js(name: &str, version: &str) -> String {
    format!("module.exports = 'hello from {name}@{version}, packed by git archive';\n")
}

/// A package whose symbolic links chain out of the package folder: `x -> .`, `y -> x/..`, then
/// `y/escaped.txt`, which lands beside the folder it is unpacked into.
pub fn symlink_chain_package(name: &str, version: &str) -> Tarball {
    let manifest = serde_json::json!({ "name": name, "version": version, "license": "MIT" });
    Tarball::new()
        .file("package/package.json", serde_json::to_string_pretty(&manifest).unwrap())
        .file("package/index.js", "module.exports = 1;\n")
        .symlink("package/x", ".")
        .symlink("package/y", "x/..")
        .file("package/y/escaped.txt", "written outside the package\n")
}

/// A minimal package (`package/package.json` and `package/index.js`) whose bytes depend only on
/// its arguments: `index` is the script's text.
pub fn simple_package(name: &str, version: &str, description: &str, index: &str) -> Vec<u8> {
    let manifest =
        serde_json::json!({ "name": name, "version": version, "description": description, "license": "MIT" });
    Tarball::new().file("package/package.json", manifest.to_string()).file("package/index.js", index).build()
}

/// The JSON body `npm publish` sends for `tgz`: the packument with the tarball attached, under
/// the key npm gives it (`@scope/name-1.0.0.tgz` for a scoped package).
pub fn publish_body(name: &str, version: &str, tgz: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let file = format!("{name}-{version}.tgz");
    serde_json::to_vec(&serde_json::json!({
        "_id": name, "name": name, "dist-tags": { "latest": version },
        "versions": { version: { "name": name, "version": version, "dist": { "tarball": format!("http://x/{name}/-/{file}") } } },
        "_attachments": { file: { "content_type": "application/octet-stream",
            "data": base64::engine::general_purpose::STANDARD.encode(tgz), "length": tgz.len() } },
    }))
    .unwrap()
}

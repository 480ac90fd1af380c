//! Builds `.nupkg` files in the shapes nuget.org holds, written record by record so that the
//! tests control what the zip crate's writer would refuse to write: the OPC parts `nuget pack`
//! adds (`[Content_Types].xml`, `_rels/.rels`, the `.psmdcp` core properties), nuspecs with empty
//! dependency groups (`Humanizer.Core` style), and hostile zips (two entries of one name, a small
//! zip of a 1 GB entry, many entries sharing one stream of data).

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc};
use std::io::Write;

const STORED: u16 = 0;
const DEFLATED: u16 = 8;

/// One local entry: its header and data are written once.
struct Local {
    name: String,
    method: u16,
    crc: u32,
    size: u64,
    data: Vec<u8>,
}

/// A nupkg under construction.
pub struct Nupkg {
    locals: Vec<Local>,
    /// Central directory records beyond one per local entry: (name, index of the local entry).
    extra_records: Vec<(String, usize)>,
}

impl Nupkg {
    /// A package holding `nuspec` (as `ID.nuspec`) and the OPC parts nuget pack writes.
    pub fn new(id: &str, nuspec: &str) -> Nupkg {
        let mut pkg = Nupkg { locals: Vec::new(), extra_records: Vec::new() };
        let psmdcp = "package/services/metadata/core-properties/0d5c3a0b7f4e4a35b8a4b0b3f8c9e2d1.psmdcp";
        pkg = pkg
            .file(
                "_rels/.rels",
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
                     <Relationship Type=\"http://schemas.microsoft.com/packaging/2010/07/manifest\" Target=\"/{id}.nuspec\" Id=\"R1\" />\
                     <Relationship Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"/{psmdcp}\" Id=\"R2\" /></Relationships>"
                ),
            )
            .file(&format!("{id}.nuspec"), nuspec)
            .file(
                psmdcp,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><coreProperties xmlns=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\">\
                     <identifier>{id}</identifier></coreProperties>"
                ),
            )
            .file(
                "[Content_Types].xml",
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
                 <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\" />\
                 <Default Extension=\"nuspec\" ContentType=\"application/octet\" />\
                 <Default Extension=\"dll\" ContentType=\"application/octet\" />\
                 <Default Extension=\"psmdcp\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\" /></Types>",
            );
        pkg
    }

    /// A deflated file.
    pub fn file(mut self, name: &str, data: impl AsRef<[u8]>) -> Self {
        let data = data.as_ref();
        let mut crc = Crc::new();
        crc.update(data);
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        let compressed = encoder.finish().unwrap();
        self.locals.push(Local {
            name: name.to_string(),
            method: DEFLATED,
            crc: crc.sum(),
            size: data.len() as u64,
            data: compressed,
        });
        self
    }

    /// A stored (uncompressed) file.
    pub fn stored(mut self, name: &str, data: impl AsRef<[u8]>) -> Self {
        let data = data.as_ref();
        let mut crc = Crc::new();
        crc.update(data);
        self.locals.push(Local {
            name: name.to_string(),
            method: STORED,
            crc: crc.sum(),
            size: data.len() as u64,
            data: data.to_vec(),
        });
        self
    }

    /// A file of `size` zero bytes, deflated as it is written: 1 GB becomes about 1 MB.
    pub fn zeros(mut self, name: &str, size: u64) -> Self {
        let chunk = vec![0u8; 1 << 20];
        let mut crc = Crc::new();
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            crc.update(&chunk[..n]);
            encoder.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
        }
        let data = encoder.finish().unwrap();
        self.locals.push(Local { name: name.to_string(), method: DEFLATED, crc: crc.sum(), size, data });
        self
    }

    /// A second entry named like an earlier one, with its own data (a zip writer would refuse it).
    pub fn duplicate(self, name: &str, data: impl AsRef<[u8]>) -> Self {
        self.file(name, data)
    }

    /// `count` more central directory records, `prefix0000`..., all pointing at the data of the
    /// last file added: a zip bomb that unpacks one stream many times.
    pub fn sharing_last(mut self, prefix: &str, count: usize) -> Self {
        let last = self.locals.len() - 1;
        for i in 0..count {
            self.extra_records.push((format!("{prefix}{i:04}.bin"), last));
        }
        self
    }

    pub fn build(self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for local in &self.locals {
            offsets.push(out.len() as u32);
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes()); // version needed
            out.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
            out.extend_from_slice(&local.method.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // time
            out.extend_from_slice(&0x5821u16.to_le_bytes()); // date: 2024-01-01
            out.extend_from_slice(&local.crc.to_le_bytes());
            out.extend_from_slice(&(local.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(local.size as u32).to_le_bytes());
            out.extend_from_slice(&(local.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(local.name.as_bytes());
            out.extend_from_slice(&local.data);
        }
        let directory_start = out.len() as u32;
        let records: Vec<(&str, usize)> = (0..self.locals.len())
            .map(|i| (self.locals[i].name.as_str(), i))
            .chain(self.extra_records.iter().map(|(n, i)| (n.as_str(), *i)))
            .collect();
        for (name, index) in &records {
            let local = &self.locals[*index];
            out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            out.extend_from_slice(&20u16.to_le_bytes()); // made by
            out.extend_from_slice(&20u16.to_le_bytes()); // needed
            out.extend_from_slice(&0x0800u16.to_le_bytes());
            out.extend_from_slice(&local.method.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&0x5821u16.to_le_bytes());
            out.extend_from_slice(&local.crc.to_le_bytes());
            out.extend_from_slice(&(local.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(local.size as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
            out.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            out.extend_from_slice(&offsets[*index].to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        let directory_size = out.len() as u32 - directory_start;
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(records.len() as u16).to_le_bytes());
        out.extend_from_slice(&(records.len() as u16).to_le_bytes());
        out.extend_from_slice(&directory_size.to_le_bytes());
        out.extend_from_slice(&directory_start.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

/// A nuspec as `nuget pack` writes it, with `metadata` (XML elements) inside `<metadata>`.
pub fn nuspec(id: &str, version: &str, metadata: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<package xmlns=\"http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd\">\n  <metadata>\n    \
         <id>{id}</id>\n    <version>{version}</version>\n    <authors>Sluice Tests</authors>\n    \
         <description>{id}, shaped like the package on nuget.org.</description>\n    {metadata}\n  </metadata>\n</package>"
    )
}

/// `Humanizer.Core` 2.14.1's shape: a .NETStandard1.0 group that needs `NETStandard.Library`,
/// and an empty .NETStandard2.0 group ("this framework needs nothing"), with a library for each.
pub fn humanizer_core_like(id: &str, version: &str) -> Vec<u8> {
    let metadata =
        "<license type=\"expression\">MIT</license>\n    <licenseUrl>https://licenses.nuget.org/MIT</licenseUrl>\n    \
        <dependencies>\n      <group targetFramework=\".NETStandard1.0\">\n        \
        <dependency id=\"NETStandard.Library\" version=\"1.6.1\" exclude=\"Build,Analyzers\" />\n      </group>\n      \
        <group targetFramework=\".NETStandard2.0\" />\n    </dependencies>";
    Nupkg::new(id, &nuspec(id, version, metadata))
        .file("lib/netstandard1.0/Humanizer.dll", format!("{id} {version} for netstandard1.0"))
        .file("lib/netstandard2.0/Humanizer.dll", format!("{id} {version} for netstandard2.0"))
        .build()
}

/// The smallest valid PNG (1x1, transparent), as an embedded icon.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

//! `sluice:plugin@0.3.0`, frozen. 0.4.0 kept every 0.3.0 record and only added a reply variant
//! (`fetch-file`), an error kind (`unavailable`) and the `upstream` import, so a record crosses
//! the boundary by its serde form, as 0.2.0's does (see `v0_2_0::convert`). An error of the new
//! kind reaches an older plugin's `render-error` as `internal` (`older_error`). Its imports call
//! the newest implementation.

contract_bindings!("../wit/v0.3.0");

use super::latest;
use crate::plugin::host::{BlobHandle, CallState, TreeHandle};
use wasmtime::component::Resource;

/// An error as a contract before 0.4.0 can take it: `unavailable` did not exist, and what an
/// older plugin shows for an internal error is the closest (the host logged the detail).
pub fn older_error(err: &latest::Error) -> latest::Error {
    match err.kind {
        latest::ErrorKind::Unavailable => {
            latest::Error { kind: latest::ErrorKind::Internal, message: err.message.clone() }
        }
        _ => err.clone(),
    }
}

older_resources!();

older_registry!(package, search, all_packages, summary, tokens);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_cross_to_0_4_0_and_the_new_error_kind_back_as_internal() {
        let outcome = Outcome {
            effects: vec![Effect::RevokeToken("k".into())],
            reply: Reply::ServeFile(FileRef {
                package: "demo".into(),
                file_name: "demo-1.0.0.tgz".into(),
                content_type: "application/octet-stream".into(),
            }),
            keep: Some(Keep { depends_on: vec![Source::Package("demo".into())], vary: vec![], append_only: false }),
        };
        let new: latest::Outcome = super::super::convert(&outcome).unwrap();
        assert!(matches!(new.reply, latest::Reply::ServeFile(ref f) if f.file_name == "demo-1.0.0.tgz"));
        let err = latest::Error { kind: latest::ErrorKind::Unavailable, message: "upstream down".into() };
        let old: Error = super::super::convert(&older_error(&err)).unwrap();
        assert!(matches!(old.kind, ErrorKind::Internal));
        assert!(super::super::convert::<_, Error>(&err).is_err(), "0.3.0 has no `unavailable`");
    }
}

//! The registry as the format plugins and their clients see it: the client protocol served through
//! a repository's plugin (`protocol`: the plugin's `handle` decides, the host authorises and
//! carries out the effects, publishing, kept documents, `render-error`), publishing by git tag
//! (`git_tags`), and the plugins' `registry` import, the store seen through the gate (`view`).
//! Everything here is synchronous and runs on blocking threads, over the app state
//! (`Registry(&app)`, or `&Arc<App>` for what runs in the background).
//!
//! May call: `app`, `pipeline` (to plan and advance a push's pipeline), `plugin`, `store`,
//! `domain`, `auth`, `config`, `error`, `git_source`, `upstream`. Called by `http`. Group
//! repositories (`group`): one view over several members, publishes to the first local one.

mod git_tags;
mod group;
mod protocol;
mod upstream;
mod view;

pub use git_tags::{poll_git, start_sync, sync_job};
pub use protocol::{refresh_documents, ClientRequest, NewPush, Reply, Rerender};
pub use view::artifact_of;

use crate::app::App;

/// The registry service over the app state. Methods read the app's parts through `Deref`.
#[derive(Clone, Copy)]
pub struct Registry<'a>(pub &'a App);

impl std::ops::Deref for Registry<'_> {
    type Target = App;
    fn deref(&self) -> &App {
        self.0
    }
}

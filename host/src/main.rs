use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sluice::auth;
use sluice::config::Config;
use sluice::plugin::{kit, wit, Limits, PluginRuntime};
use sluice::store::Db;

#[derive(Parser)]
#[command(name = "sluice", version, about = "A package registry whose formats are WebAssembly plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long, env = "SLUICE_LISTEN")]
        listen: Option<String>,
        /// Data folder (default ./sluice-data).
        #[arg(long, env = "SLUICE_DATA")]
        data: Option<PathBuf>,
        /// TOML config file.
        #[arg(long, env = "SLUICE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Take pipeline jobs from a server and run them.
    Runner {
        /// The server's URL.
        #[arg(long, env = "SLUICE_URL")]
        url: String,
        /// A token with the `runner` scope.
        #[arg(long, env = "SLUICE_RUNNER_TOKEN")]
        token: String,
        /// Take one job, run it, and exit.
        #[arg(long)]
        once: bool,
        /// Where jobs run (default: `sluice-runner` in the temp folder).
        #[arg(long, env = "SLUICE_RUNNER_WORK_DIR")]
        work_dir: Option<PathBuf>,
        /// How many jobs run at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// Copy this registry (its database rows and package files) into PostgreSQL and object
    /// storage, for several replicas to serve; files are verified by their sha256.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
        /// The database to copy into: `postgres://user@host:port/db`, empty (its schema is created).
        #[arg(long)]
        to: String,
        /// Where to copy the package files: `s3://bucket/prefix` (with the `AWS_*` settings, as for
        /// `blobs`). Default: they stay where they are.
        #[arg(long)]
        blobs: Option<String>,
    },
    /// Inspect plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (alone, on stdout). It is stored hashed and never shown again.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        name: String,
        /// Comma-separated: read, publish, admin, runner.
        #[arg(long)]
        scopes: String,
        /// Limit the token to one repository.
        #[arg(long)]
        repository: Option<String>,
        /// Lifetime, such as `90d` or `12h`; refused after it. Default: never expires.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (never their secrets) with scopes, expiry and last use.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (from `token list`); refused at once by every server on this data.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
    },
}

/// Which store a token command works on: the server's data folder and config file, read as
/// `serve` reads them, so the database (and blob) settings are the server's.
#[derive(clap::Args)]
struct StoreArgs {
    /// Data folder (default ./sluice-data).
    #[arg(long, env = "SLUICE_DATA")]
    data: Option<PathBuf>,
    /// The server's TOML config file (its `database` setting, or SLUICE_DATABASE, is used).
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
}

impl StoreArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data {
            config.data = d.clone();
        }
        Ok(config)
    }

    fn open(&self) -> anyhow::Result<Db> {
        Ok(Db::open_configured(&self.config()?)?)
    }
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Print what a plugin declares: its format, and the extraction and trigger for a sample package.
    Inspect { file: PathBuf },
    /// Write a new plugin crate (`DIR/NAME`) that builds for wasm32-wasip2 and loads as it is.
    New {
        /// The format's name (lower-case; also its default repository name).
        name: String,
        /// The folder to create the crate in.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK crate (Sluice's `sdk/` folder); defaults to the one this binary was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Load a plugin and exercise the contract; exits non-zero with the list of what is wrong.
    Check { file: PathBuf },
}

/// A time in ms since the epoch as RFC 3339 (UTC, seconds).
fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { listen, data, config } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(d) = data {
                config.data = d;
            }
            tokio::runtime::Runtime::new()?.block_on(sluice::http::serve(config))
        }
        Command::Runner { url, token, once, work_dir, concurrency } => {
            let options = sluice::runner::RunnerOptions {
                url,
                token,
                once,
                work_dir: work_dir.unwrap_or_else(|| std::env::temp_dir().join("sluice-runner")),
                concurrency,
                poll_seconds: 30,
            };
            tokio::runtime::Runtime::new()?.block_on(sluice::runner::run(options))
        }
        Command::Token { command: TokenCommand::Create { store, name, scopes, repository, expires } } => {
            let db = store.open()?;
            let issued = auth::issue_token(&db, &name, &scopes, repository.as_deref(), expires.as_deref())?;
            println!("{}", issued.secret);
            Ok(())
        }
        Command::Token { command: TokenCommand::List { store, json } } => {
            let db = store.open()?;
            let tokens = db.tokens()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
                return Ok(());
            }
            let when = |ms: Option<i64>| ms.map(format_ms).unwrap_or_else(|| "-".into());
            println!(
                "{:<6} {:<20} {:<22} {:<12} {:<8} {:<20} {:<20}",
                "ID", "NAME", "SCOPES", "REPOSITORY", "STATE", "EXPIRES", "LAST USED"
            );
            for t in tokens {
                let state = if t.revoked {
                    "revoked"
                } else if t.expires_at.is_some_and(|e| e <= sluice::store::db::now_ms()) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<6} {:<20} {:<22} {:<12} {:<8} {:<20} {:<20}",
                    t.id,
                    t.name,
                    t.scopes,
                    t.repository.as_deref().unwrap_or("*"),
                    state,
                    when(t.expires_at),
                    when(t.last_used_at)
                );
            }
            Ok(())
        }
        Command::Token { command: TokenCommand::Revoke { store, id } } => {
            let db = store.open()?;
            db.revoke_token(id)?;
            eprintln!("token {id} revoked");
            Ok(())
        }
        Command::Migrate { store, to, blobs } => {
            let config = store.config()?;
            let report = sluice::store::migrate::migrate(&config, &to, blobs.as_deref())?;
            for (table, rows) in &report.rows {
                println!("{table:<20} {rows:>8} rows");
            }
            if report.blobs_in_place {
                println!("package files        stay where they are");
            } else {
                println!(
                    "package files        {:>8} copied ({} bytes, each sha256 checked), {} already there",
                    report.blobs_copied, report.bytes_copied, report.blobs_present
                );
            }
            eprintln!(
                "migrated into {to}: start the replicas with `database` set to it{}",
                match &blobs {
                    Some(b) => format!(" and `blobs = \"{b}\"`"),
                    None => String::new(),
                }
            );
            Ok(())
        }
        Command::Plugin { command: PluginCommand::New { name, dir, sdk } } => {
            let sdk = sdk.unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sdk")));
            let root = kit::new_plugin(&dir, &name, &sdk)?;
            println!("{}", root.display());
            eprintln!("wrote {}; see its README.md to build, check and load it", root.display());
            Ok(())
        }
        Command::Plugin { command: PluginCommand::Check { file } } => {
            let limits = Limits::default();
            let runtime = PluginRuntime::new(limits, std::env::temp_dir().join("sluice-plugin-check"))?;
            let report = kit::check(&runtime, limits, &file);
            for finding in &report.findings {
                match finding {
                    kit::Finding::Ok(what) => println!("ok       {what}"),
                    kit::Finding::Problem(what) => println!("PROBLEM  {what}"),
                }
            }
            let problems = report.problems().len();
            if problems > 0 {
                eprintln!("{}: {problems} problem(s)", file.display());
                std::process::exit(1);
            }
            eprintln!("{}: the plugin passes every check", file.display());
            Ok(())
        }
        Command::Plugin { command: PluginCommand::Inspect { file } } => {
            let cache = std::env::temp_dir().join("sluice-plugin-inspect");
            let runtime = PluginRuntime::new(Limits::default(), cache)?;
            let plugin = runtime.load_file(&file)?;
            let sample = wit::Metadata::named("example", "1.0.0");
            let report = serde_json::json!({
                "file": file,
                "sha256": plugin.sha256,
                "contract": format!("sluice:plugin@{}", plugin.contract),
                "format": plugin.info,
                "extraction (for example@1.0.0)": plugin.extraction_for(&sample)?,
                "trigger (for example@1.0.0)": plugin.trigger_for(&sample)?,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}

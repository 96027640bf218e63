//! Command-line interface (seeds §9.1): parsing and dispatch only.

mod args;
mod logging;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, MarketplaceCommand};
use ggen::domain::session::{Overrides, Session};
use ggen::domain::{self, MarketplaceError, Query};
use ggen::home::GgenHome;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<(), MarketplaceError> {
    let overrides = Overrides {
        registry: cli.registry,
        registry_plugin: cli.registry_plugin,
        plugin_timeout: cli.plugin_timeout.map(|s| s.into()),
        plugin_memory_mib: cli.plugin_memory,
    };
    let session = Session::new(GgenHome::from_env()?, overrides)?;
    let Command::Marketplace { command } = cli.command;
    match command {
        MarketplaceCommand::Search(a) => {
            let query = Query {
                text: a.query.join(" "),
                categories: a.category,
                tags: a.tag,
                limit: a.limit,
                offset: a.offset,
            };
            let mut registry = session.open_registry()?;
            let results = domain::search::search(registry.as_mut(), &query)?;
            output::search(&query, &results, a.json);
        }
        MarketplaceCommand::Publish(a) => {
            let mut registry = session.open_registry()?;
            let options = domain::publish::PublishOptions {
                dry_run: a.dry_run,
                force: a.force,
            };
            let report = domain::publish::publish(registry.as_mut(), &a.dir, &options, || {
                session.lock_registry()
            })?;
            output::publish(&report, a.json);
        }
        MarketplaceCommand::Info(a) => {
            let mut registry = session.open_registry()?;
            let package = domain::info::info(registry.as_mut(), &a.name)?;
            output::info(&package, a.json);
        }
        MarketplaceCommand::Install(a) => {
            let specs = a
                .packages
                .iter()
                .map(|p| domain::install::parse_spec(p))
                .collect::<Result<Vec<_>, _>>()?;
            let root = a
                .target
                .clone()
                .unwrap_or_else(|| session.packages_dir.clone());
            let options = domain::install::InstallOptions {
                force: a.force,
                with_dependencies: !a.no_dependencies,
                dry_run: a.dry_run,
                limits: session.config.marketplace.install.limits(),
            };
            let mut registry = session.open_registry()?;
            let progress = progress::for_output(a.json);
            let report = domain::install::install(
                registry.as_mut(),
                &session.source_id(),
                &root,
                &specs,
                &options,
                progress.as_ref(),
                || session.lock_install_root(&root),
            )?;
            output::install(&report, a.json);
        }
        MarketplaceCommand::Update(a) => {
            let root = a
                .target
                .clone()
                .unwrap_or_else(|| session.packages_dir.clone());
            let options = domain::install::InstallOptions {
                force: false,
                with_dependencies: true,
                dry_run: a.dry_run,
                limits: session.config.marketplace.install.limits(),
            };
            let mut registry = session.open_registry()?;
            let progress = progress::for_output(a.json);
            let report = domain::update::update(
                registry.as_mut(),
                &session.source_id(),
                &root,
                &a.packages,
                &options,
                progress.as_ref(),
                || session.lock_install_root(&root),
            )?;
            output::install(&report, a.json);
        }
        MarketplaceCommand::Remove(a) => {
            let root = a
                .target
                .clone()
                .unwrap_or_else(|| session.packages_dir.clone());
            let report = domain::remove::remove(&root, &a.name, a.force, || {
                session.lock_install_root(&root)
            })?;
            output::remove(&report, a.json);
        }
        MarketplaceCommand::Verify(a) => {
            let root = a
                .target
                .clone()
                .unwrap_or_else(|| session.packages_dir.clone());
            let report = domain::verify::verify(&root)?;
            output::verify(&report, a.json);
            let bad = report.packages.iter().filter(|p| !p.ok()).count();
            if bad > 0 {
                return Err(MarketplaceError::Security(format!(
                    "{bad} installed package{} differ{} from ggen.lock",
                    if bad == 1 { "" } else { "s" },
                    if bad == 1 { "s" } else { "" }
                )));
            }
        }
        MarketplaceCommand::List(a) => {
            let root = a
                .target
                .clone()
                .unwrap_or_else(|| session.packages_dir.clone());
            let packages = domain::installed::list(&root)?;
            output::list(&packages, a.json);
        }
    }
    Ok(())
}

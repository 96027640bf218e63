//! Command-line interface (seeds §9.1): parsing and dispatch only.

/// `println!` for the command's output for people: registry text made safe
/// for the terminal, and a clean end when stdout cannot take it instead of a
/// panic (see `output::write_line`).
macro_rules! out {
    () => {
        $crate::cli::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(format_args!($($arg)*))
    };
}

/// `eprintln!` for errors, warnings and progress: a closed stderr
/// (`2>&1 | head`) drops the line instead of panicking mid-command.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::output::write_note(format_args!($($arg)*))
    };
}

mod args;
mod confirm;
mod logging;
mod output;
mod p2p;
mod p2p_output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, MarketplaceCommand, PluginCommand};
use ggen::domain::install::Backends;
use ggen::domain::{self, MarketplaceError};
use ggen::home::GgenHome;
use ggen::session::{Overrides, P2pOverrides, Session};

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    logging::init(cli.verbose);
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Help and version as clap prints them; a usage error on one line, like
/// every other error (clap spreads it over a paragraph), with exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Like every report: a closed pipe is quiet, an unwritable stdout an error.
        return match e
            .print()
            .and_then(|()| std::io::Write::flush(&mut std::io::stdout()))
        {
            Err(w) if w.kind() != std::io::ErrorKind::BrokenPipe => {
                note!("error: cannot write the output: {w}");
                ExitCode::FAILURE
            }
            _ => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)),
        };
    }
    let line = one_line_usage(&e.render().to_string());
    note!("error: {}", output::error_line(&line));
    ExitCode::from(2)
}

/// `error: what:\n  <A>\n  <B>\n\n  tip: ...\n\nUsage: ...\n\nFor more information, try '--help'.`
/// as `what: <A>, <B>; tip: ...; usage: ...; see --help`.
fn one_line_usage(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for raw in rendered.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("For more information") {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        let usage = line.strip_prefix("Usage: ").map(|u| format!("usage: {u}"));
        let indented = raw.starts_with(char::is_whitespace) && !line.starts_with("tip:");
        match parts.last_mut() {
            // An indented list (missing arguments) continues its sentence.
            Some(last) if indented => {
                last.push_str(if last.ends_with(':') { " " } else { ", " });
                last.push_str(line);
            }
            _ => parts.push(usage.unwrap_or_else(|| line.to_owned())),
        }
    }
    parts.push("see --help".into());
    parts.join("; ")
}

fn execute(cli: Cli) -> Result<(), MarketplaceError> {
    let overrides = Overrides {
        registry: cli.registry,
        registry_plugin: cli.registry_plugin,
        plugin_timeout: cli.plugin_timeout,
        plugin_memory_mib: cli.plugin_memory,
        p2p_policy_plugin: cli.p2p_policy_plugin,
    };
    let session = Session::new(GgenHome::from_env()?, overrides)?;
    let Command::Marketplace { command } = cli.command;
    match command {
        MarketplaceCommand::Search(a) => {
            if !a.hybrid && !a.net.bootstrap.is_empty() {
                return Err(MarketplaceError::Validation(
                    "--bootstrap is used only to ask peers; add --hybrid, or drop --bootstrap"
                        .into(),
                ));
            }
            let query = a.query.into_query();
            let mut registry = session.open_existing_registry()?;
            if a.hybrid {
                return p2p::hybrid_search(&session, registry.as_mut(), &query, &a.net, a.json);
            }
            let results = domain::search::search(registry.as_mut(), &query)?;
            output::search(&query, &results, a.json);
        }
        MarketplaceCommand::Publish(a) => {
            // Bad input is refused before a registry is made or a plugin compiled.
            let package = domain::publish::prepare(&a.dir)?;
            let (mut registry, _created) = session.open_registry_to_publish()?;
            let options = domain::publish::PublishOptions {
                dry_run: a.dry_run,
                force: a.force,
            };
            let report = domain::publish::publish(registry.as_mut(), &package, &options, || {
                session.lock_registry()
            })?;
            output::publish(&report, a.json);
        }
        MarketplaceCommand::Unpublish(a) => {
            // Bad input is refused before a plugin is compiled.
            let target = domain::unpublish::parse(&a.package)?;
            let mut registry = session.open_existing_registry()?;
            let report = domain::unpublish::unpublish(registry.as_mut(), &target, a.force, || {
                session.lock_registry()
            })?;
            output::unpublish(&report, a.json);
        }
        MarketplaceCommand::Info(a) => {
            let mut registry = session.open_existing_registry()?;
            let package = domain::info::info(registry.as_mut(), &a.name)?;
            output::info(&package, a.json);
        }
        MarketplaceCommand::Install(a) => {
            let specs = a
                .packages
                .iter()
                .map(|p| domain::install::parse_spec(p))
                .collect::<Result<Vec<_>, _>>()?;
            let root = session.install_root(a.target.as_deref());
            let options = install_options(
                &session,
                (a.force, a.force),
                !a.no_dependencies,
                a.dry_run,
                &a.hooks,
            )?;
            let mut env = InstallEnv::open(&session, a.json)?;
            let peers = from_peers(&session, a.p2p, &a.net)?;
            let report = install_from(&session, &mut env, peers, &root, &specs, &options, || {
                session.lock_install_root(&root)
            })?;
            output::install(&report, a.json, &target_flag(a.target.as_deref()));
            warn_unused_vars(&a.hooks.vars, &report);
            if !a.json
                && !report.dry_run
                && (report.packages.iter()).all(|p| p.action == domain::install::Action::Unchanged)
            {
                // `--allow-hooks` does not run the hooks of what is installed already.
                let named: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                let waiting: Vec<String> = (domain::approve::pending(&root).unwrap_or_default())
                    .into_iter()
                    .filter(|p| named.contains(&p.name.as_str()))
                    .map(|p| p.name)
                    .collect();
                if !waiting.is_empty() {
                    out!(
                        "The post-install hooks of {} were skipped when it was installed; run them with `ggen marketplace approve-hooks{}`.",
                        waiting.join(", "),
                        target_flag(a.target.as_deref())
                    );
                }
            }
        }
        MarketplaceCommand::Update(a) => {
            let root = session.install_root(a.target.as_deref());
            let options = install_options(&session, (false, a.force), true, a.dry_run, &a.hooks)?;
            let mut env = InstallEnv::open(&session, a.json)?;
            let peers = from_peers(&session, a.p2p, &a.net)?;
            let report = domain::update::update(
                &root,
                &a.packages,
                &options,
                peers.is_some(),
                || session.lock_existing_install_root(&root),
                // update holds the lock already
                |origin, specs, options| {
                    let peers = peers
                        .clone()
                        .filter(|_| origin == domain::installed::Origin::Peers);
                    install_from(&session, &mut env, peers, &root, specs, options, || Ok(()))
                },
            )?;
            output::update(&report, a.json, &target_flag(a.target.as_deref()));
            warn_unused_vars(&a.hooks.vars, &report);
        }
        MarketplaceCommand::Remove(a) => {
            let root = session.install_root(a.target.as_deref());
            let report = domain::remove::remove(&root, &a.name, a.force, || {
                session.lock_existing_install_root(&root)
            })?;
            output::remove(&report, a.json);
        }
        MarketplaceCommand::Verify(a) => {
            let root = session.installed_root(a.target.as_deref())?;
            let _reading = session.read_lock_install_root(&root)?;
            let report = domain::verify::verify(&root)?;
            output::verify(&report, a.json);
            if report.interrupted > 0 {
                return Err(MarketplaceError::Storage(interrupted_note(&root)));
            }
            let bad: Vec<String> = (report.packages.iter())
                .filter(|p| !p.files_ok())
                .map(|p| format!("{}@{}", p.name, p.version))
                .collect();
            if !bad.is_empty() {
                let n = bad.len();
                return Err(MarketplaceError::Validation(format!(
                    "{n} installed package{} differ{} from ggen.lock (the files listed above); to restore {} as published, run `ggen marketplace install {}{} --force`",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    if n == 1 { "it" } else { "them" },
                    bad.iter()
                        .map(|b| shell_word(b))
                        .collect::<Vec<_>>()
                        .join(" "),
                    target_flag(a.target.as_deref())
                )));
            }
            if let Some(p) = report.packages.iter().find(|p| !p.ok()) {
                return Err(MarketplaceError::Dependency(format!(
                    "{}@{} needs {}, which is not installed; run `ggen marketplace install {}{}` to install it",
                    p.name,
                    p.version,
                    p.missing_dependencies.join(", "),
                    p.name,
                    target_flag(a.target.as_deref())
                )));
            }
        }
        MarketplaceCommand::ApproveHooks(a) => {
            if !a.net.bootstrap.is_empty() {
                session.check_network(&p2p::overrides(&a.net))?;
            }
            let root = session.installed_root(a.target.as_deref())?;
            let pending = domain::approve::pending_now(&root, || session.lock_install_root(&root))?;
            if pending.is_empty() {
                output::no_pending_hooks(a.json);
                if !a.vars.is_empty() {
                    tracing::warn!("--var was not used: no hooks were waiting ({RERUN_HOOKS})");
                }
                return Ok(());
            }
            if !a.json || !a.yes {
                output::pending_hooks(&pending, a.json);
            }
            if !a.yes && !confirm::ask("Approve these hooks and run them now?")? {
                return Err(MarketplaceError::Validation(
                    "nothing approved (the answer was not yes); the hooks stay skipped until approve-hooks is answered yes".into(),
                ));
            }
            let names: Vec<String> = pending.iter().map(|p| p.name.clone()).collect();
            // run_approved reinstalls the locked versions with these names
            // allowed; config.toml records each origin's approvals before
            // its reinstall, so that a config.toml that cannot be written
            // stops the command before any hook runs (after the commit, it
            // failed a command whose hooks had run, and lost the consent),
            // and takes them back if the reinstall fails.
            let options = domain::install::InstallOptions {
                force: true,
                discard_changes: a.force,
                with_dependencies: false,
                dry_run: false,
                limits: session.config.marketplace.install.limits(),
                hooks: session.hook_options(&names, false, a.vars)?,
                pinned: Default::default(),
                unnamed: Default::default(),
                requested: false,
            };
            let mut env = InstallEnv::open(&session, a.json)?;
            // Each package comes again from where it came from: from peers
            // (falling back to the registry) when ggen.lock says a peer
            // delivered it.
            let report =
                domain::approve::run_approved(&pending, &options, |origin, specs, options| {
                    let peers = (origin == domain::installed::Origin::Peers)
                        .then(|| a.net.bootstrap.clone());
                    let approved: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
                    let added = session.home.approve_hooks(&approved)?;
                    let report =
                        install_from(&session, &mut env, peers, &root, specs, options, || {
                            session.lock_install_root(&root)
                        });
                    if report.is_err() {
                        // Nothing ran: the command leaves config.toml as it was.
                        if let Err(e) = session.home.withdraw_hooks(&added) {
                            tracing::warn!(
                                "cannot take back the approvals of hooks that did not run: {e}"
                            );
                        }
                    }
                    report
                })?;
            output::install(&report, a.json, &target_flag(a.target.as_deref()));
        }
        MarketplaceCommand::Plugin {
            command: PluginCommand::Inspect(a),
        } => {
            let inspection = session.inspect_plugin(&a.file)?;
            output::inspect(&a.file, &inspection, a.json);
        }
        MarketplaceCommand::P2p { command } => p2p::run(&session, command)?,
        MarketplaceCommand::List(a) => {
            let root = session.installed_root(a.target.as_deref())?;
            let _reading = session.read_lock_install_root(&root)?;
            let packages = domain::installed::list(&root)?;
            let interrupted = domain::transaction::interrupted(&root);
            if interrupted > 0 {
                tracing::warn!("{}", interrupted_note(&root));
            }
            output::list(&packages, interrupted, a.json);
        }
    }
    Ok(())
}

/// ` --target DIR` for a command suggested to the user, when they gave one.
fn target_flag(target: Option<&std::path::Path>) -> String {
    target
        .map(|t| format!(" --target {}", shell_word(&t.to_string_lossy())))
        .unwrap_or_default()
}

/// How an installed package's hooks run again, with new `--var` values.
const RERUN_HOOKS: &str =
    "`install NAME --force --allow-hooks NAME --var ...` runs an installed package's hooks again";

/// `--var` values reach only the hooks that run in this command, and are
/// kept only with the packages whose hooks ran: say so when none ran, and
/// how they would.
fn warn_unused_vars(vars: &[(String, String)], report: &domain::install::InstallReport) {
    use domain::installed::HookOutcome;
    let ran = (report.hooks.iter()).any(|h| h.outcome == HookOutcome::Ran);
    if vars.is_empty() || ran || report.dry_run {
        return;
    }
    let skipped = (report.hooks.iter()).any(|h| h.outcome == HookOutcome::Skipped);
    let unchanged =
        (report.packages.iter()).all(|p| p.action == domain::install::Action::Unchanged);
    let why = if skipped {
        "no post-install hook ran (give the values to approve-hooks when you approve the hooks)"
            .into()
    } else if unchanged {
        format!("nothing was installed or replaced, so no post-install hook ran ({RERUN_HOOKS})")
    } else {
        "none of the packages installed has post-install hooks".into()
    };
    tracing::warn!("--var was not used and is not kept: {why}");
}

/// `word` as a shell reads it back (quoted when it needs to be).
fn shell_word(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| format!("{word:?}"), |q| q.into_owned())
}

/// What to say about a root with an interrupted transaction (verify, list).
fn interrupted_note(root: &std::path::Path) -> String {
    format!(
        "{} holds an interrupted transaction, so its files may not match ggen.lock; run any install, update or remove there to roll it back",
        root.display()
    )
}

/// The bootstrap peers to install through (empty: the configured ones), or
/// None to install from the registry alone.
fn from_peers(
    session: &Session,
    p2p: bool,
    net: &args::NetArgs,
) -> Result<Option<Vec<String>>, MarketplaceError> {
    let p2p = p2p
        || std::env::var("P2P_ENABLED").is_ok_and(|v| v == "1" || v == "true")
        || session.config.marketplace.p2p.enabled;
    if !p2p && !net.bootstrap.is_empty() {
        return Err(MarketplaceError::Validation(
            "--bootstrap is used only to install from peers; add --p2p, or drop --bootstrap".into(),
        ));
    }
    if p2p {
        // Checked before anything is done: update and approve-hooks go
        // online only for what peers delivered, and took any address
        // without a word otherwise.
        session.check_network(&p2p::overrides(net))?;
    }
    Ok(p2p.then(|| net.bootstrap.clone()))
}

/// One install transaction: from peers, falling back to the registry
/// (`peers` Some), or from the registry.
fn install_from<L>(
    session: &Session,
    env: &mut InstallEnv,
    peers: Option<Vec<String>>,
    root: &std::path::Path,
    specs: &[domain::install::Spec],
    options: &domain::install::InstallOptions,
    lock: impl Fn() -> Result<L, MarketplaceError>,
) -> Result<domain::install::InstallReport, MarketplaceError> {
    let Some(bootstrap) = peers else {
        return domain::install::install(env.backends(), root, specs, options, lock).map_err(|e| {
            // Without P2P compiled in, --p2p is no help.
            if cfg!(feature = "p2p") {
                domain::p2p_install::hint_peers(e, root, specs)
            } else {
                e
            }
        });
    };
    let mut network = session.open_network(&P2pOverrides {
        bootstrap,
        ..P2pOverrides::default()
    })?;
    let mut policy = session.open_policy()?;
    domain::p2p_install::install_p2p(
        domain::p2p_install::Peers {
            network: network.as_mut(),
            policy: policy.as_mut(),
            min_reputation: session.config.marketplace.p2p.reputation.min_reputation,
            downloads: &session.home.p2p().join("downloads"),
        },
        env.backends(),
        root,
        specs,
        options,
        lock,
    )
}

/// What install, update and approve-hooks work with.
struct InstallEnv {
    registry: Box<dyn ggen::domain::Registry>,
    source: String,
    hooks: Box<dyn ggen::domain::HookRunner>,
    progress: Box<dyn ggen::domain::progress::Progress>,
}

impl InstallEnv {
    fn open(session: &Session, json: bool) -> Result<Self, MarketplaceError> {
        Ok(Self {
            registry: session.open_registry()?,
            source: session.source_id(),
            hooks: session.hook_runner()?,
            progress: progress::for_output(json),
        })
    }

    fn backends(&mut self) -> Backends<'_> {
        Backends {
            registry: self.registry.as_mut(),
            source: &self.source,
            hooks: self.hooks.as_mut(),
            progress: self.progress.as_ref(),
        }
    }
}

/// `(force, discard_changes)`: see [`domain::install::InstallOptions`].
fn install_options(
    session: &Session,
    (force, discard_changes): (bool, bool),
    with_dependencies: bool,
    dry_run: bool,
    hooks: &args::HookArgs,
) -> Result<domain::install::InstallOptions, MarketplaceError> {
    Ok(domain::install::InstallOptions {
        force,
        discard_changes,
        with_dependencies,
        dry_run,
        limits: session.config.marketplace.install.limits(),
        hooks: session.hook_options(
            &hooks.allow_hooks,
            hooks.allow_all_hooks,
            hooks.vars.clone(),
        )?,
        pinned: Default::default(),
        unnamed: Default::default(),
        requested: true,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_errors_become_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <A>\n  --target <DIR>\n\n  tip: try this\n\nUsage: ggen x <A> --target <DIR>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::one_line_usage(rendered),
            "the following required arguments were not provided: <A>, --target <DIR>; \
             tip: try this; usage: ggen x <A> --target <DIR>; see --help"
        );
    }
}

//! The command line, declared with clap derive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ggen::domain::search::DEFAULT_LIMIT;

/// The heading under which `--help` lists the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "ggen",
    version,
    about = "ggen marketplace: search, publish and install template packages"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Use this registry backend (a registry-plugin component) instead of the built-in file registry
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE.wasm")]
    pub registry_plugin: Option<PathBuf>,

    /// Use this P2P policy (a p2p-policy-plugin component) instead of the built-in one
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE.wasm")]
    pub p2p_policy_plugin: Option<PathBuf>,

    /// Registry root directory [default: registry_path in config.toml, else $GGEN_HOME/registry]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DIR")]
    pub registry: Option<PathBuf>,

    /// Deadline for each plugin call, e.g. 5s or 500ms [default: 5s, or config.toml]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub plugin_timeout: Option<std::time::Duration>,

    /// Memory cap per plugin, in MiB [default: 256, or config.toml]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "MIB")]
    pub plugin_memory: Option<u64>,

    /// More output (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand)]
pub enum Command {
    /// Search, publish, install, update, remove and verify marketplace packages
    Marketplace {
        #[command(subcommand)]
        command: MarketplaceCommand,
    },
}

#[derive(Subcommand)]
pub enum MarketplaceCommand {
    /// Search packages by name, title, description and tags
    Search(SearchArgs),
    /// Publish a package directory (with a package.json) to the registry
    Publish(PublishArgs),
    /// Show every version of a package with its dependencies and checksum
    Info(InfoArgs),
    /// Remove one published version from the registry
    Unpublish(UnpublishArgs),
    /// Install packages and their dependencies
    Install(InstallArgs),
    /// Update installed packages to the newest versions their requirements allow
    Update(UpdateArgs),
    /// Remove an installed package
    Remove(RemoveArgs),
    /// Re-hash installed packages against ggen.lock (non-zero exit if anything differs)
    Verify(VerifyArgs),
    /// List installed packages
    List(ListArgs),
    /// List post-install hooks that were skipped for want of approval, approve them and run them
    ApproveHooks(ApproveHooksArgs),
    /// Work with plugin components
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// The peer-to-peer network: run a node, publish and search across peers
    P2p {
        #[command(subcommand)]
        command: P2pCommand,
    },
}

#[derive(Subcommand)]
pub enum P2pCommand {
    /// Run a node: persistent identity, DHT records for the local registry, announcements
    Start(P2pStartArgs),
    /// Stop the node running for this GGEN_HOME
    Stop,
    /// Publish a package to the local registry, the DHT and the announcement topic
    Publish(P2pPublishArgs),
    /// Search local packages, packages announced on the network and the DHT
    Search(P2pSearchArgs),
    /// Peers this node knows, best reputation first
    PeerList(P2pPeerListArgs),
    /// Everything this node knows about one peer
    PeerInfo(P2pPeerInfoArgs),
    /// Connect to more peers
    Bootstrap(P2pBootstrapArgs),
    /// The node's identity, addresses, peers, records and metrics
    Status(P2pStatusArgs),
}

/// Peers to start from when no node is running (overrides config.toml).
#[derive(Args, Clone)]
pub struct NetArgs {
    /// A bootstrap peer, e.g. /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo... (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
}

#[derive(Args)]
pub struct P2pStartArgs {
    /// Listen address [default: [marketplace.p2p] listen_address, else /ip4/0.0.0.0/tcp/0] (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    #[command(flatten)]
    pub net: NetArgs,
    /// Serve the DHT even if [marketplace.p2p] dht_server_mode = false (server mode is the default)
    #[arg(long, conflicts_with = "dht_client")]
    pub dht_server: bool,
    /// Be a DHT client only, even if [marketplace.p2p] dht_server_mode = true
    #[arg(long)]
    pub dht_client: bool,
    /// Run in the background (output in $GGEN_HOME/p2p/node.log)
    #[arg(long)]
    pub daemon: bool,
    /// Stop by itself after this long, e.g. 10m
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub exit_after: Option<std::time::Duration>,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pPublishArgs {
    /// Package directory containing package.json
    pub dir: PathBuf,
    /// Replace the version if it is already published locally
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pSearchArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Leave out packages from peers below this reputation (0.0-1.0) [default: config, 0.5]
    #[arg(long, value_name = "R")]
    pub min_reputation: Option<f64>,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pPeerListArgs {
    /// Only peers at or above this reputation (0.0-1.0)
    #[arg(long, value_name = "R")]
    pub min_reputation: Option<f64>,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pPeerInfoArgs {
    /// The peer's id
    pub peer_id: String,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pBootstrapArgs {
    /// Peers to connect to
    #[arg(required = true, value_name = "MULTIADDR")]
    pub addresses: Vec<String>,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct P2pStatusArgs {
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Show a component's world, contract version, imports, exports, size, sha256 and sandbox grants
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct InspectArgs {
    /// The component file
    pub file: PathBuf,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

/// Consent and input for post-install hooks (install, update).
#[derive(Args)]
pub struct HookArgs {
    /// Run the post-install hooks of these packages (repeat or separate with commas)
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub allow_hooks: Vec<String>,
    /// Run every package's post-install hooks
    #[arg(long)]
    pub allow_all_hooks: bool,
    /// A variable for post-install hooks, e.g. --var project_name=demo (repeatable; kept in ggen.lock for when they run again)
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    ggen::domain::hooks::parse_var(text)
}

#[derive(Args)]
pub struct ApproveHooksArgs {
    /// Approve without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Installation root [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// A variable for the hooks, e.g. --var project_name=demo (repeatable; kept in ggen.lock for when they run again)
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Discard local changes to the packages it reinstalls to run their hooks
    #[arg(long)]
    pub force: bool,
    /// Peers to fetch packages installed from peers through (as install --p2p)
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
// One required group, so a bare `update` names both ways to say what.
#[command(group(clap::ArgGroup::new("which").required(true).args(["packages", "all"])))]
pub struct UpdateArgs {
    /// Packages to update (the others stay as they are)
    #[arg(conflicts_with = "all")]
    pub packages: Vec<String>,
    /// Update every installed package
    #[arg(long)]
    pub all: bool,
    /// Installation root [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Discard local changes to the packages it replaces
    #[arg(long)]
    pub force: bool,
    /// Update the packages peers delivered from the P2P network (falling back to the registry), the rest from the registry [also P2P_ENABLED=1 or [marketplace.p2p] enabled]
    #[arg(long)]
    pub p2p: bool,
    #[command(flatten)]
    pub net: NetArgs,
    #[command(flatten)]
    pub hooks: HookArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// Package name
    pub name: String,
    /// Installation root [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Remove even if installed packages depend on it or its files have local changes
    #[arg(long)]
    pub force: bool,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Installation root [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InstallArgs {
    /// Packages as NAME (the highest version that fits), NAME@VERSION, NAME@RANGE (^1.2, ~1.2, ">=1, <2") or NAME@latest (exactly the newest)
    #[arg(required = true, value_name = "NAME[@REQ]")]
    pub packages: Vec<String>,
    /// Install into DIR/<name> with DIR/ggen.lock [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Reinstall packages that are already installed, replace files in the way that ggen did not install, and discard local changes to the packages replaced
    #[arg(long)]
    pub force: bool,
    /// Install only the named packages, not their dependencies
    #[arg(long)]
    pub no_dependencies: bool,
    /// Fetch from peers (metadata from the DHT, tarballs from providers), falling back to the registry [also P2P_ENABLED=1 or [marketplace.p2p] enabled]
    #[arg(long)]
    pub p2p: bool,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub hooks: HookArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

/// What to search for (search, p2p search).
#[derive(Args)]
pub struct QueryArgs {
    /// Search text; every word must match (empty lists everything)
    pub query: Vec<String>,
    /// Only packages in this category (repeat to require several)
    #[arg(long, value_name = "C")]
    pub category: Vec<String>,
    /// Only packages with this tag (repeat to require several)
    #[arg(long, value_name = "T")]
    pub tag: Vec<String>,
    /// At most this many results
    #[arg(long, default_value_t = DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
    /// Skip this many results (for paging)
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

impl QueryArgs {
    pub fn into_query(self) -> ggen::domain::Query {
        ggen::domain::Query {
            text: self.query.join(" "),
            categories: self.category,
            tags: self.tag,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Also ask the P2P network (in parallel), merge by package, newest stable version wins, show each result's source
    #[arg(long)]
    pub hybrid: bool,
    #[command(flatten)]
    pub net: NetArgs,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PublishArgs {
    /// Package directory containing package.json (files that .gitignore or .ggenignore leave out are not packed)
    pub dir: PathBuf,
    /// Validate and pack, list the files, but publish nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace the version if it is already published
    #[arg(long)]
    pub force: bool,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    /// Package name; NAME@VERSION, NAME@RANGE or NAME@latest shows only those versions
    #[arg(value_name = "NAME[@REQ]")]
    pub name: String,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct UnpublishArgs {
    /// The version to remove, exactly as `info` lists it
    #[arg(value_name = "NAME@VERSION")]
    pub package: String,
    /// Remove it even though other published packages need it
    #[arg(long)]
    pub force: bool,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    /// Installation root [default: $GGEN_HOME/packages]
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// Print JSON (format in README)
    #[arg(long)]
    pub json: bool,
}

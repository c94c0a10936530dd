//! Command-line arguments (SPEC.md, "Commands").

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Amazon ECS clusters (EC2 launch type) balanced, right-sized and afloat on Spot.
#[derive(Debug, Parser)]
#[command(name = "ballast", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Global options.
    #[command(flatten)]
    pub global: Global,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// A ballast.yaml (default: ./ballast.yaml if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Where clusters live: `aws` (the real API) or `sim` (the built-in simulator, with
    /// --scenario). Default: `sim` when --scenario is given, else `aws`.
    #[arg(long, global = true, value_enum)]
    pub backend: Option<BackendKind>,
    /// AWS Region (default: AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// An AWS-compatible endpoint for every service (e.g. a local emulator).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Real clusters through the AWS API (the standard credential chain).
    Aws,
    /// The built-in ECS simulator (needs --scenario).
    Sim,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// A short showcase on the simulator; no AWS needed.
    Demo,
    /// Simulate a scenario under one or more policies and compare them.
    Simulate(SimulateArgs),
    /// Tasks per instance and the COV per measure.
    Status(ClusterArgs),
    /// What a run would do now; changes nothing.
    Plan(ClusterArgs),
    /// Run the jobs once.
    Run(RunArgs),
    /// Check a configuration (and a scenario); exit 2 with file:line:col on error.
    Validate(ValidateArgs),
    /// The least-privilege IAM policy (JSON) for the configuration's jobs and clusters.
    IamPolicy(IamPolicyArgs),
    /// The CloudFormation template of the Lambda deployment for the configuration: its role
    /// is `iam-policy`'s, its rules the configured jobs' triggers (docs/lambda.md).
    Template(TemplateArgs),
    /// Serve a scenario's simulated cluster over AWS's APIs (ECS, Auto Scaling, CloudWatch)
    /// for any client: the SDKs, boto3, the AWS CLI, ballast (docs/twin.md).
    Twin(TwinArgs),
}

/// `twin`.
#[derive(Debug, Args)]
pub struct TwinArgs {
    /// Scenario file (SPEC.md, Scenario format v1): the world served.
    #[arg(long)]
    pub scenario: PathBuf,
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:4599")]
    pub listen: std::net::SocketAddr,
    /// Simulated time per wall-clock time (e.g. 10: ten simulated seconds a second).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Listen on a non-loopback address (anyone who reaches it can change the world).
    #[arg(long)]
    pub allow_remote: bool,
}

/// `template`.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The package's S3 key, written as the CodeKey parameter's default
    /// (scripts/package-lambda passes the content-named key).
    #[arg(long, default_value = "ballast-lambda.zip")]
    pub code_key: String,
}

/// `iam-policy`.
#[derive(Debug, Args)]
pub struct IamPolicyArgs {
    /// Scope the ARNs to this account id (default `*`).
    #[arg(long)]
    pub account: Option<String>,
    /// Scope to this cluster only (default: the configured clusters, or any tagged one).
    #[arg(long)]
    pub cluster: Option<String>,
}

/// `simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (SPEC.md, Scenario format v1).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Comma-separated policies: ballast, none, drain-cov, redeploy-on-join, spot-pending,
    /// ecs-autoscale, capacity-provider; a baseline takes options after its name
    /// (drain-cov:every=5m:max_instances=3; docs/baselines.md).
    #[arg(long, default_value = "ballast")]
    pub policy: String,
    /// Print the report as one JSON array.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML page (or .svg) with charts over time.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Kill ballast after each mutating call in turn and check the next run recovers.
    #[arg(long)]
    pub crash_matrix: bool,
    /// Also print each policy's timeline (one line a minute: instances, unplaced tasks,
    /// availability, COV) on stderr.
    #[arg(long)]
    pub timeline: bool,
    /// Also print what ballast decided in each run that acted (its jobs' decisions and how
    /// each step ended) on stderr.
    #[arg(long)]
    pub journal: bool,
    /// Run N generated variants of the scenario (daemons or not, boot and task start times,
    /// demand, seeds) and print each figure's distribution per policy.
    #[arg(long, value_name = "N", conflicts_with = "variant")]
    pub variants: Option<usize>,
    /// Run only generated variant K (as `--variants` numbers them), with every other option:
    /// to look into one variant of a distribution.
    #[arg(long, value_name = "K")]
    pub variant: Option<usize>,
    /// Also report the fewest restarts to balanced for a policy that restarts only through
    /// the scheduler (`min_moves_scheduled`; docs/simulator.md): a second search.
    #[arg(long)]
    pub scheduler_bound: bool,
    /// The work each exact restart bound may spend, in candidate moves looked at (default
    /// 20,000,000): more proves more bounds exact, never a wrong one.
    #[arg(long, value_name = "UNITS")]
    pub bound_work: Option<u64>,
}

/// `status` and `plan`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Cluster name (default: every configured cluster and every cluster tagged
    /// `ballast:enabled=true`, or the scenario's).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The simulated cluster (with --backend sim).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Simulated time at which to look (default: 5 minutes after the scenario's last event).
    #[arg(long)]
    pub at: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Job {
    /// Rebalance tasks across instances.
    Rebalance,
    /// Scale services by their rules and the Auto Scaling group to fit them (seed 003).
    Autoscale,
    /// Cover a Spot shortfall with on-demand capacity (and give it back by draining).
    SpotFallback,
    /// Every configured job.
    All,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Which cluster and when.
    #[command(flatten)]
    pub target: ClusterArgs,
    /// Which job.
    #[arg(long, value_enum, default_value = "all")]
    pub job: Job,
    /// Plan and print the actions without sending them.
    #[arg(long)]
    pub dry_run: bool,
    /// The whole run must end within this (each cluster's share starts when it does);
    /// no disruptive step starts that could not finish or be undone in time.
    #[arg(long, default_value = "14m")]
    pub deadline: String,
}

/// `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Also validate this scenario.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
}

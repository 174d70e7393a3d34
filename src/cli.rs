//! Command-line interface: clap definitions only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::detect::Severity;
use crate::engine::{MemoryLimit, Scheduler};
use crate::formats::FormatKind;
use crate::output::{CsvBom, OutputFormat};
use crate::report::{By, Lang};

/// trawl: turn archived proxy and firewall logs into a lake, and hunt through it with SQL.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse log files (plain or gzip, any folder depth) into the lake.
    #[command(after_help = "Examples:\n  \
        trawl ingest /evidence/proxy01 --lake ./lake --tz Asia/Tokyo\n  \
        trawl ingest access.log access.log.1 access.log.2.gz --lake ./lake\n  \
        trawl ingest ./logs --lake ./lake --squid-conf /etc/squid/squid.conf\n  \
        trawl ingest ./logs --lake ./lake --squid-logformat 'mine %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %>st %rm %ru'\n\n\
        Every line is accounted for: rows go to `proxy`, unreadable lines to `rejects`\n\
        with file, line number and reason. Exit status: 0 ok, 1 some file could not be\n\
        read to its end, 2 error.")]
    Ingest(IngestArgs),
    /// Run read-only SQL over the lake.
    #[command(after_help = "Examples:\n  \
        trawl query --lake ./lake \"SELECT username, sum(response_bytes) FROM proxy GROUP BY 1 ORDER BY 2 DESC LIMIT 10\"\n  \
        trawl query --lake ./lake -f hunt.sql -o report.csv\n  \
        trawl query --lake ./lake --schema\n\n\
        Tables: proxy, firewall, rejects, ingests, ifilter_categories, job_sites, jp_holidays, allow_domains. Functions: reg_domain(host), url_host(url), local_ts(ts)\n\
        (wall time in the lake's zone), uri_stem(path), uri_query(path), uri_extension(path), cidr_match(addr, net),\n\
        ua_browser/ua_os/ua_device/ua_name(user_agent), ip_country/ip_asn/ip_org(ip) (with --geoip).\n\
        `WHERE date = 'YYYY-MM-DD'` reads one day's files only.")]
    Query(QueryArgs),
    /// Merge small Parquet files and delete files no version needs any more; no row changes.
    #[command(after_help = "Examples:\n  \
        trawl compact --lake ./lake\n  \
        trawl compact --lake ./lake --retention-hours 0\n\n\
        Each partition's files under 256 MiB are merged into one (a Delta optimize commit, rows\n\
        unchanged). Files the log removed longer ago than the retention are deleted (vacuum),\n\
        files a killed ingest wrote but never committed are deleted at once, and each table's list of\n\
        live files for plain-Parquet readers is rewritten.")]
    Compact(CompactArgs),
    /// Rewrite each table's list of live files for plain-Parquet readers (Spark, DuckDB, polars).
    #[command(after_help = "Examples:\n  \
        trawl manifest --lake ./lake\n\n\
        Every commit writes <table>/_symlink_format_manifest/<partition>/manifest; this repairs\n\
        lists that a run stopped right after its commit left behind, or that name the old place\n\
        of a lake that was moved or copied. `trawl verify` reports lists that are stale.")]
    Manifest(LakeArg),
    /// Re-hash the lake's files, and the original logs if given, against what was recorded.
    #[command(after_help = "Examples:\n  \
        trawl verify --lake ./lake\n  \
        trawl verify --lake ./lake /evidence/proxy01\n\n\
        Every Parquet file the tables name is re-hashed against the SHA-256 recorded in the\n\
        Delta log when it was written; files in the table folders that no version names are\n\
        listed as extra. Given PATHs (files or folders) are re-hashed against the ingests table.\n\
        Exit status: 0 all match, 1 a mismatch, missing or extra file, 2 error.")]
    Verify(VerifyArgs),
    /// Run detection packs (saved SQL) over the lake and summarise what they found.
    #[command(after_help = "Examples:\n  \
        trawl detect --lake ./lake\n  \
        trawl detect --lake ./lake --since 2024-05-01 --until 2024-05-07 --out report/\n  \
        trawl detect --lake ./lake --only large_uploads --set threshold_bytes=500000000\n  \
        trawl detect --lake ./lake --pack ./my-pack --fail-on high\n  \
        trawl detect --list\n  \
        trawl detect --lint --pack ./my-pack\n  \
        trawl detect --lake ./lake --sigma ./sigma/rules --out report/\n\n\
        The built-in pack is compiled in; --pack adds folders of <id>.sql files (a detection with a\n\
        built-in's id replaces it). Times in results are wall times in the lake's zone.\n\
        Exit status: 0 ok, 2 error (a detection failed, or bad arguments), 3 a detection at or above\n\
        --fail-on found something.")]
    Detect(DetectArgs),
    /// Sigma rules without a lake: the SQL a rule compiles to, or a check of a folder of rules.
    #[command(after_help = "Examples:\n  \
        trawl sigma explain rules/web/proxy_generic/proxy_ua_susp.yml\n  \
        trawl sigma lint ./sigma/rules\n\n\
        Rules for proxy and firewall logs are compiled; a rule that cannot be compiled whole is listed\n\
        as skipped with the reason. Run them over a lake with `trawl detect --sigma DIR`.")]
    Sigma(SigmaArgs),
    /// Sweep the lake for indicators (domains, addresses, networks, URLs) from threat-intel lists.
    #[command(after_help = "Examples:\n  \
        trawl hunt --lake ./lake --ioc vendor-iocs.txt\n  \
        trawl hunt --lake ./lake --ioc feed.stix.json --ioc misp-event.json --since 2024-05-01 --out hunt/\n  \
        trawl hunt --lake ./lake --ioc iocs.csv --column indicator --allow top-sites.json --geoip GeoLite2-ASN.mmdb\n\n\
        Lists: plain text (one value a line, # comments), CSV (--column), STIX 2.1 bundles, MISP\n\
        events, attribute lists and warninglists, JSON lists; defanged values (hxxp://, example[.]com)\n\
        are read. A domain matches itself and its subdomains; addresses and networks match client,\n\
        server and firewall addresses and URLs with an address for host; URLs match normalised, and\n\
        one ending in * every URL it starts. Every indicator is listed: with its hits, or with none.\n\
        Exit status: 0 ok, 1 some list values are not indicators (they are listed), 2 error.")]
    Hunt(HuntArgs),
    /// Write one self-contained HTML case report: sources and coverage, findings, overview.
    #[command(after_help = "Examples:\n  \
        trawl report --lake ./lake -o case.html\n  \
        trawl report --lake ./lake --since 2024-05-01 --until 2024-05-07 --user tanaka -o case.html --out case/\n  \
        trawl report --lake ./lake --pseudonymise case.key --lang en -o for-counsel.html\n  \
        trawl report --lake ./lake --sigma ./sigma/rules --geoip GeoLite2-ASN.mmdb -o case.html\n\n\
        The file needs nothing outside itself (no scripts, fonts or images by address): open it on an\n\
        isolated machine, or print it (A4, one section a page). case.json beside it records the lake,\n\
        the range, every detection's SQL and parameters, each input file's SHA-256 and the hit counts.\n\
        A pseudonym key is any file of at least 16 random bytes: head -c 32 /dev/urandom > case.key")]
    Report(ReportArgs),
    /// One person's proxy and firewall activity in time order, bursts folded, detections marked.
    #[command(after_help = "Examples:\n  \
        trawl timeline --lake ./lake --user tanaka\n  \
        trawl timeline --lake ./lake --user tanaka --anchor 2024-06-05 --window 30d\n  \
        trawl timeline --lake ./lake --client 10.1.0.17 --raw --format csv > tanaka.csv\n\n\
        Firewall rows are those from the client addresses the user had in the proxy logs. With\n\
        --anchor, the `new` column marks what the person did for the first time after that date:\n\
        a domain, an upload (1 MB or more) to a domain, a night session (22:00-05:00).")]
    Timeline(TimelineArgs),
    /// Run a Ballista scheduler or executor, for `--cluster` on query and hunt.
    #[command(after_help = "Examples:\n  \
        trawl cluster scheduler --bind 127.0.0.1:50050\n  \
        trawl cluster executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50051 --concurrency 2\n  \
        trawl hunt --lake ./lake --cluster df://127.0.0.1:50050 --ioc iocs.txt\n\n\
        Executors read the lake's Parquet files by the paths the client sees: run them on the same\n\
        machine or mount the lake at the same path. Both run until stopped (Ctrl-C, SIGTERM).")]
    Cluster(ClusterArgs),
    /// Per log source: when it logged, and the gaps where it went silent.
    #[command(after_help = "Examples:\n  \
        trawl coverage --lake ./lake\n  \
        trawl coverage --lake ./lake --by host --gaps --gap-minutes 30 --format csv\n\n\
        A gap is a silence longer than --gap-minutes between two rows of one source; \
        others_rows\n\
        counts what the other sources logged meanwhile (0: all was quiet, many: this source alone\n\
        stopped).")]
    Coverage(CoverageArgs),
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: clients send it statements, it hands their stages to executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050", value_name = "IP:PORT")]
        bind: std::net::SocketAddr,
    },
    /// Run an executor for a scheduler: it reads the lake's files and runs the stages it is given.
    Executor {
        /// The scheduler to register with.
        #[arg(long, value_name = "HOST:PORT", value_parser = Scheduler::parse)]
        scheduler: Scheduler,
        /// Address to serve results on (Arrow Flight), to clients and other executors.
        #[arg(long, default_value = "127.0.0.1:50051", value_name = "IP:PORT")]
        bind: std::net::SocketAddr,
        /// Tasks run at once (default: one per core).
        #[arg(long, default_value_t = 0, value_name = "N")]
        concurrency: usize,
        /// Folder for shuffle files (default: one under the OS temp folder, removed when the
        /// executor stops on Ctrl-C or SIGTERM).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Memory this executor's tasks may use together (8G, 512M, 25%); they spill to the
        /// work folder beyond it. Default: half of this machine's memory.
        #[arg(long, value_name = "SIZE", value_parser = MemoryLimit::parse)]
        memory_limit: Option<MemoryLimit>,
    },
}

/// Where statements run.
#[derive(Debug, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArg {
    /// Run the SQL on the Ballista cluster of this scheduler (see `trawl cluster`); its executors
    /// must read the lake's files at the paths this machine sees them. --memory-limit then
    /// bounds only this machine's share (the executors' is set where they start).
    #[arg(long, value_name = "df://HOST:PORT", value_parser = Scheduler::parse)]
    pub cluster: Option<Scheduler>,
    /// Give up a statement on the cluster still unfinished after this long (90s, 45m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = Scheduler::parse_timeout, requires = "cluster")]
    pub cluster_timeout: std::time::Duration,
}

impl ClusterArg {
    /// The scheduler to run on, with the timeout its statements get; None: run here.
    pub fn scheduler(&self) -> Option<Scheduler> {
        self.cluster.clone().map(|s| Scheduler { timeout: Some(self.cluster_timeout), ..s })
    }
}

#[derive(Debug, Args)]
pub struct SigmaArgs {
    #[command(subcommand)]
    pub command: SigmaCommand,
}

#[derive(Debug, Subcommand)]
pub enum SigmaCommand {
    /// Print the SQL a rule compiles to and the field mapping it uses (or why it is skipped).
    Explain {
        /// A Sigma rule file (.yml).
        #[arg(value_name = "RULE.yml", required = true)]
        rules: Vec<PathBuf>,
    },
    /// Compile and plan every rule under the folders against empty tables; no lake needed.
    /// Exit 2 if a compiled rule does not plan.
    Lint {
        /// Sigma rule files or folders (walked recursively).
        #[arg(value_name = "DIR", required = true)]
        paths: Vec<PathBuf>,
    },
}

/// Lists and databases that enrich what the logs say.
#[derive(Debug, Args)]
#[command(next_help_heading = "Enrichment")]
pub struct EnrichArgs {
    /// Allow or popularity list (repeatable; the formats --ioc reads, e.g. a MISP warninglist):
    /// its domains become table allow_domains, and hunt marks the indicators it covers.
    #[arg(long = "allow", value_name = "FILE")]
    pub allow: Vec<PathBuf>,
    /// MaxMind-format database (repeatable: country, city or ASN .mmdb) for ip_country(ip),
    /// ip_asn(ip) and ip_org(ip), which give NULL without one; detections then add country and
    /// network columns beside the addresses they name, and the report destinations by country.
    #[arg(long = "geoip", value_name = "FILE.mmdb")]
    pub geoip: Vec<PathBuf>,
    /// CSV column holding the values in --ioc and --allow CSV files: a header name or a 1-based
    /// number. Default: a column named indicator, ioc, value, domain, url, ip, ...
    #[arg(long, value_name = "NAME|N")]
    pub column: Option<String>,
}

#[derive(Debug, Args)]
pub struct HuntArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Indicator list (repeatable).
    #[arg(long = "ioc", required = true, value_name = "FILE")]
    pub iocs: Vec<PathBuf>,
    /// Write hits, detail (per indicator, table and who), no_hits and unread files into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Format of the files in --out.
    #[arg(long, value_name = "FORMAT", default_value = "csv", requires = "out")]
    pub format: OutputFormat,
    /// Overwrite files already in --out.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Rows of hits and of indicators without hits shown on the terminal (files get every row).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_rows: usize,
    // Groups last: each sets the help heading of the arguments after it.
    #[command(flatten)]
    pub range: TimeRangeArgs,
    #[command(flatten)]
    pub cluster: ClusterArg,
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

/// How coverage is measured.
#[derive(Debug, Args)]
#[command(next_help_heading = "Coverage")]
pub struct CoverageOptions {
    /// What a source is: the file family (rotations together), the log host, or the format.
    #[arg(long, value_name = "KIND", default_value = "file")]
    pub by: By,
    /// Silences longer than this between two rows of one source are gaps.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub gap_minutes: u32,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub pack: PackArgs,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    #[command(flatten)]
    pub coverage: CoverageOptions,
    /// Run only this detection (repeatable, or comma-separated; default: every detection of the pack).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Add this user's timeline to the report (repeatable).
    #[arg(long, value_name = "USER")]
    pub user: Vec<String>,
    /// Add this client address's timeline to the report (repeatable).
    #[arg(long, value_name = "IP")]
    pub client: Vec<String>,
    /// Language of the labels (default: from LC_ALL, LC_MESSAGES or LANG).
    #[arg(long, value_name = "LANG")]
    pub lang: Option<Lang>,
    /// Replace user names and internal addresses by keyed pseudonyms (HMAC-SHA-256 under the
    /// key in this file), in the page, the CSV files and case.json alike.
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymise: Option<PathBuf>,
    /// The HTML file to write (case.json is written beside it).
    #[arg(long, short = 'o', value_name = "FILE.html")]
    pub output: PathBuf,
    /// Also write every finding's full rows as <id>.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// Rows of each finding shown in the page.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub rows: usize,
    // Last: it sets the help heading of the arguments after it.
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// The user name (as in the proxy logs).
    #[arg(long, value_name = "USER", required_unless_present = "client")]
    pub user: Option<String>,
    /// A client address (repeatable); with --user, added to the user's own.
    #[arg(long, value_name = "IP")]
    pub client: Vec<String>,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    /// Centre the timeline on this date or time (a resignation, an alert) and mark what is new after it.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["since", "until"])]
    pub anchor: Option<String>,
    /// How far either side of --anchor: days (30d) or hours (12h).
    #[arg(long, value_name = "SPAN", default_value = "30d", requires = "anchor")]
    pub window: String,
    /// One row per log line instead of folded bursts.
    #[arg(long)]
    pub raw: bool,
    /// Rows of one table closer than this fold into one burst.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub burst_seconds: i64,
    #[command(flatten)]
    pub pack: PackArgs,
    /// Replace user names and internal addresses by keyed pseudonyms (see `trawl report`).
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymise: Option<PathBuf>,
    /// Output format (default: table on a terminal, else CSV).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    #[command(flatten)]
    pub coverage: CoverageOptions,
    /// List the gaps (one row each) instead of one row per source.
    #[arg(long)]
    pub gaps: bool,
    /// Output format (default: table on a terminal, else CSV).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Keep files removed from the log for this long, so readers of older versions still find
    /// them (Delta's default: one week).
    #[arg(long, default_value_t = 168, value_name = "HOURS")]
    pub retention_hours: u32,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// Original log files or folders to check against the hashes recorded when they were read.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Where the lake is.
#[derive(Debug, Args)]
pub struct LakeArg {
    /// The lake folder (created by the first ingest), or a file:// URL of it.
    #[arg(long, value_name = "DIR")]
    pub lake: PathBuf,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Log files or folders (walked recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub lake: LakeArg,
    /// Time zone of the lake's date partitions (IANA name), fixed when the lake is created.
    /// Default: this machine's zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Read every file as this format instead of recognising each from its first lines.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<FormatKind>,
    /// A custom Squid format, as in squid.conf: 'NAME FORMAT' (repeatable). Files are matched
    /// against these before the built-in formats.
    #[arg(long, value_name = "'NAME FORMAT'")]
    pub squid_logformat: Vec<String>,
    /// Read every `logformat` definition in this squid.conf.
    #[arg(long, value_name = "squid.conf")]
    pub squid_conf: Vec<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar and no per-file table; the one-line summary only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    /// The SQL statement (or use -f).
    #[arg(value_name = "SQL", conflicts_with_all = ["file", "schema"])]
    pub sql: Option<String>,
    /// Read the SQL from a file.
    #[arg(long, short = 'f', value_name = "FILE.sql", conflicts_with = "schema")]
    pub file: Option<PathBuf>,
    /// Run one detection of the pack by id (see `trawl detect --list`) and print its rows.
    #[arg(long, value_name = "ID", conflicts_with_all = ["sql", "file", "schema"])]
    pub detection: Option<String>,
    #[command(flatten)]
    pub pack: PackArgs,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    /// List the tables and their columns instead of running SQL.
    #[arg(long)]
    pub schema: bool,
    /// Output format (default: table on a terminal, else CSV; with -o, from the extension).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<OutputFormat>,
    /// Write results to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the -o file if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Start CSV with a UTF-8 byte-order mark (auto: in files, for Excel; not into pipes).
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub csv_bom: CsvBom,
    /// Rows shown in a terminal table (files always get every row).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub max_rows: usize,
    #[command(flatten)]
    pub memory: MemoryArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

/// How much memory queries may take.
#[derive(Debug, Args)]
pub struct MemoryArg {
    /// Memory queries may use (8G, 512M, 25%); sorts, aggregates and joins spill to the temp
    /// folder beyond it. Default: half of this machine's memory.
    #[arg(long, value_name = "SIZE", value_parser = MemoryLimit::parse)]
    pub memory_limit: Option<MemoryLimit>,
}

/// Which detections exist and how they are parameterised.
#[derive(Debug, Args)]
#[command(next_help_heading = "Packs")]
pub struct PackArgs {
    /// A pack folder of <id>.sql detections (repeatable), on top of the built-in pack.
    #[arg(long = "pack", value_name = "DIR")]
    pub packs: Vec<PathBuf>,
    /// Leave out the built-in pack (use only --pack folders and --sigma rules).
    #[arg(long)]
    pub no_builtin: bool,
    /// Sigma rule files or folders (repeatable): rules for proxy and firewall logs run as
    /// detections named after their file, beside the packs.
    #[arg(long = "sigma", value_name = "FILE|DIR")]
    pub sigma: Vec<PathBuf>,
    /// Override a parameter: KEY=VALUE for every detection declaring KEY, ID.KEY=VALUE for one.
    #[arg(long = "set", value_name = "[ID.]KEY=VALUE")]
    pub set: Vec<String>,
}

/// Restricts the time-partitioned tables (proxy, firewall) to a time range.
#[derive(Debug, Args)]
#[command(next_help_heading = "Time range")]
pub struct TimeRangeArgs {
    /// From this time on: RFC 3339, `YYYY-MM-DD HH:MM`, or `YYYY-MM-DD` (the lake's zone).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time; a date includes that whole day.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The lake folder (created by the first ingest), or a file:// URL of it.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["list", "lint", "replay"])]
    pub lake: Option<PathBuf>,
    /// Run a recorded case again (case.json from --out or `trawl report`): the same detections,
    /// parameters and range, over its lake unless --lake is given; prints every difference
    /// (SQL, hit counts, input files) and exits 1 if there is one.
    #[arg(long, value_name = "case.json", conflicts_with_all = ["list", "lint", "only", "set", "since", "until"])]
    pub replay: Option<PathBuf>,
    #[command(flatten)]
    pub pack: PackArgs,
    #[command(flatten)]
    pub range: TimeRangeArgs,
    /// Run only this detection (repeatable, or comma-separated).
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub only: Vec<String>,
    /// List the pack's detections with their parameters and defaults, and run nothing.
    #[arg(long)]
    pub list: bool,
    /// Check every detection (with --set values) by planning its SQL against the lake's table
    /// layout, without a lake and without running anything; exit 2 if one fails.
    #[arg(long, conflicts_with = "list")]
    pub lint: bool,
    /// Write one file per detection and summary.csv into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Format of the per-detection files in --out.
    #[arg(long, value_name = "FORMAT", default_value = "csv", requires = "out")]
    pub format: OutputFormat,
    /// Overwrite files already in --out.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Start the CSV files in --out with a UTF-8 byte-order mark, which Excel needs to read them
    /// as UTF-8 (auto: yes).
    #[arg(long, value_name = "WHEN", default_value = "auto", requires = "out")]
    pub csv_bom: CsvBom,
    /// Exit with status 3 when a detection of this severity or above finds something.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Show and write every candidate row, not only the hits (rows whose score reaches the
    /// detection's min_score).
    #[arg(long)]
    pub all: bool,
    /// Rows of each detection's hits shown under the summary (0: summary only).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub rows: usize,
    #[command(flatten)]
    pub memory: MemoryArg,
    #[command(flatten)]
    pub cluster: ClusterArg,
    #[command(flatten)]
    pub enrich: EnrichArgs,
}

//! Running trawl's SQL on an Apache DataFusion Ballista cluster: the sessions, codecs and
//! function registry a client, a scheduler and its executors share, and the two servers.
//!
//! A client plans a statement as locally, against the same tables, and sends the logical plan;
//! the scheduler cuts the physical plan into stages for the executors. What a plan holds of
//! trawl's own travels through [`LogicalCodec`]: a lake table as its live files (paths, days,
//! stats), an in-memory list as Arrow IPC, and a result computed once (a derived view or a CTE
//! read twice) as its rows, computed on the cluster before the plan that reads it is sent
//! (`materialize::compute_ahead`), or, when too large for that, as a Parquet file written to
//! the session's scratch folder of the lake (as its plan, which the scheduler inlines, only
//! when it did not fit the client's memory).
//! Functions travel by name: every side registers [`super::functions::functions`], and the
//! lake's zone is a session option (`trawl.tz`) sent with each statement. GeoIP databases stay
//! on the machine that opened them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::stats::Precision;
use datafusion::common::{Statistics, TableReference};
use datafusion::datasource::MemTable;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{FunctionRegistry, TaskContext};
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::{AsLogicalPlan, LogicalExtensionCodec};
use datafusion_proto::protobuf::LogicalPlanNode;
use object_store::ObjectStore;
use prost::Message;
use url::Url;

use super::functions::{TrawlOptions, functions};
use super::materialize::{Materialized, conform};
use super::tables::{LakeTable, file_at};
use crate::lake::{Scratch, ScratchFile};
use crate::schema::table as table_spec;

/// Port a scheduler listens on unless told otherwise (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Largest plan or result message between client, scheduler and executors: a lake table
/// travels as its file list with stats, about 1 KiB a file.
const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Largest computed result sent as its rows inside a plan (each task of a stage that reads it
/// gets a copy); a larger one is written to the session's scratch folder in the lake, which the
/// executors read as they read the lake's tables.
const MAX_SHIPPED_BYTES: usize = 32 << 20;

/// How a cluster session sends the results it computes ahead: as rows inside the plans that
/// read them, or, past a size, as files in its scratch folder of the lake.
#[derive(Debug)]
pub(crate) struct Shipping {
    scratch: Scratch,
    max_rows_bytes: AtomicUsize,
}

impl Shipping {
    pub(crate) fn new(scratch: Scratch) -> Shipping {
        Shipping { scratch, max_rows_bytes: AtomicUsize::new(MAX_SHIPPED_BYTES) }
    }

    /// Whether a computed result is small enough to travel as its rows inside each plan.
    pub(crate) fn ships_in_plan(&self, batches: &[RecordBatch]) -> bool {
        batches.iter().map(|b| b.get_array_memory_size()).sum::<usize>()
            <= self.max_rows_bytes.load(Ordering::Relaxed)
    }

    /// Where a larger one is written.
    pub(crate) fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    /// Files written so far.
    pub(crate) fn files_written(&self) -> usize {
        self.scratch.files_written()
    }

    /// Sets the size past which results travel as files (tests send every one so).
    pub(crate) fn set_max_rows_bytes(&self, bytes: usize) {
        self.max_rows_bytes.store(bytes, Ordering::Relaxed);
    }
}

/// A Ballista scheduler's address, as `--cluster df://HOST:PORT` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    pub host: String,
    pub port: u16,
    /// How long a statement may run there before it is given up as stalled (default:
    /// [`super::DEFAULT_CLUSTER_TIMEOUT`]).
    pub timeout: Option<Duration>,
}

impl Scheduler {
    /// Reads `df://HOST:PORT` (the port defaults to 50050); `HOST:PORT` alone is read too.
    pub fn parse(s: &str) -> std::result::Result<Scheduler, String> {
        let bad = || format!("{s:?}: give the scheduler as df://HOST:PORT, e.g. df://127.0.0.1:50050");
        let rest = s.trim().strip_prefix("df://").unwrap_or(s.trim()).trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, p.parse::<u16>().map_err(|_| bad())?),
            _ if !rest.is_empty() && !rest.contains('/') => (rest, DEFAULT_SCHEDULER_PORT),
            _ => return Err(bad()),
        };
        if host.contains('/') || host.contains('@') {
            return Err(bad());
        }
        Ok(Scheduler { host: host.to_string(), port, timeout: None })
    }

    /// Reads `--cluster-timeout`: `90s`, `45m`, `2h` (a bare number is minutes).
    pub fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
        let t = s.trim();
        let bad = || format!("{s:?}: give a duration such as 90s, 45m or 2h");
        let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len()));
        let n: f64 = n.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" => n,
            "m" | "" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(bad()),
        };
        if !(secs >= 1.0 && secs.is_finite()) {
            return Err(bad());
        }
        Ok(Duration::from_secs_f64(secs))
    }

    /// `HOST:PORT`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `df://HOST:PORT`, as Ballista's client takes it.
    pub fn url(&self) -> String {
        format!("df://{}", self.addr())
    }

    /// Fails, saying where and what to do, when nothing listens at the address: Ballista's
    /// client would only find out when the first statement runs, with a transport error.
    pub async fn check_reachable(&self) -> std::result::Result<(), String> {
        let connect = tokio::net::TcpStream::connect(self.addr());
        let why = match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer within 5 s".to_string(),
        };
        Err(format!(
            "no Ballista scheduler reachable at {} ({why}): start one with `trawl cluster scheduler --bind {}` \
             and at least one `trawl cluster executor --scheduler {}`, or drop --cluster to run here",
            self.addr(),
            self.addr(),
            self.addr()
        ))
    }
}

/// The session options every side of a cluster starts from: Ballista's, trawl's, and message
/// limits large enough for a lake's file list.
pub(crate) fn config(base: SessionConfig) -> SessionConfig {
    // Upgraded first: Ballista applies its restricted DataFusion options (no dynamic filter
    // pushdown, which blocks a scan forever across stages) only to a config that has no
    // BallistaConfig yet, and the setters below insert one. A no-op on the servers' configs.
    base.upgrade_for_ballista()
        .with_option_extension(TrawlOptions::default())
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(BallistaPhysicalExtensionCodec::default()))
        .with_ballista_grpc_client_max_message_size(MAX_MESSAGE_BYTES)
        // Ballista's static planner: its adaptive one (AQE, on by default in 55) replans the
        // pack's rare_domains forever, each round cancelling the stages it just made ("stages
        // to be cancelled but its not implemented"), so the job never finishes.
        .with_ballista_adaptive_query_planner(false)
}

/// The object stores of a cluster's servers: DataFusion's (the local file system), and the
/// bucket of each `s3://` lake a plan names, opened the first time one does, with this
/// machine's AWS settings (see README, Lakes on S3).
#[derive(Debug, Default)]
struct ServerStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for ServerStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        match self.known.get_store(url) {
            Err(_) if matches!(url.scheme(), "s3" | "s3a") => {
                let store = crate::lake::s3_store(url)
                    .map_err(|e| DataFusionError::External(format!("on this cluster server: {e}").into()))?;
                self.known.register_store(url, Arc::clone(&store));
                Ok(store)
            }
            known => known,
        }
    }
}

/// One registry per server process, shared by every session's runtime.
fn server_stores() -> Arc<dyn ObjectStoreRegistry> {
    static STORES: std::sync::OnceLock<Arc<ServerStores>> = std::sync::OnceLock::new();
    STORES.get_or_init(Default::default).clone()
}

/// A scheduler's or executor's session: DataFusion's and Ballista's functions and rules, and
/// trawl's functions (without GeoIP databases: those never leave the client's machine).
fn server_state(config: SessionConfig) -> Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    // The scheduler plans each lake table's scan, which looks its store up.
    let runtime = RuntimeEnvBuilder::new().with_object_store_registry(server_stores()).build_arc()?;
    let mut state = SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime).build();
    for f in functions(None) {
        state.register_udf(Arc::new(f))?;
    }
    Ok(state)
}

fn server_config() -> SessionConfig {
    config(SessionConfig::new_with_ballista())
}

/// Options of `trawl cluster executor`.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub scheduler: Scheduler,
    pub bind: SocketAddr,
    /// Tasks run at once (0: one per core).
    pub concurrency: usize,
    /// Where shuffle files go (default: a folder under the OS temp folder).
    pub work_dir: Option<std::path::PathBuf>,
    /// Memory the executor's tasks may use together; they spill beyond it.
    pub memory: super::MemoryLimit,
}

/// A job's shuffle files left behind (its scheduler restarted before removing them) are
/// removed once untouched this long; finished jobs' are removed by the scheduler's word.
const STALE_JOB_DATA: Duration = Duration::from_secs(24 * 3600);

/// Runs a scheduler at `bind` until the process is stopped.
pub async fn serve_scheduler(bind: SocketAddr) -> std::result::Result<(), String> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let mut config = SchedulerConfig::default()
        .with_hostname(bind.ip().to_string())
        .with_port(bind.port())
        .with_scheduler_policy(ballista_core::config::TaskSchedulingPolicy::PullStaged)
        .with_grpc_server_max_decoding_message_size(MAX_MESSAGE_BYTES as u32)
        .with_grpc_server_max_encoding_message_size(MAX_MESSAGE_BYTES as u32)
        .with_grpc_client_max_message_size(MAX_MESSAGE_BYTES as u32);
    config.bind_host = bind.ip().to_string();
    config.override_config_producer = Some(Arc::new(server_config));
    config.override_session_builder = Some(Arc::new(server_state));
    config.override_logical_codec = Some(Arc::new(LogicalCodec::default()));
    config.override_physical_codec = Some(Arc::new(BallistaPhysicalExtensionCodec::default()));
    // Bound here first, so a port in use is said at once and by its address.
    std::net::TcpListener::bind(bind).map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| e.to_string())?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
        .await
        .map_err(|e| format!("scheduler at {bind}: {e}"))
}

/// Runs an executor serving `opts.bind` for the scheduler until the process is stopped.
pub async fn serve_executor(opts: ExecutorOptions) -> std::result::Result<(), String> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    opts.scheduler.check_reachable().await?;
    let registry = BallistaFunctionRegistry::from(&server_state(server_config()).map_err(|e| e.to_string())?);
    let work_dir = match &opts.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("trawl-executor-{}", std::process::id())),
    };
    std::fs::create_dir_all(&work_dir).map_err(|e| format!("creating {}: {e}", work_dir.display()))?;
    let work_dir_text = work_dir.display().to_string();
    let config = ExecutorProcessConfig {
        bind_host: opts.bind.ip().to_string(),
        port: opts.bind.port(),
        scheduler_host: opts.scheduler.host.clone(),
        scheduler_port: opts.scheduler.port,
        vcores: opts.concurrency,
        task_scheduling_policy: ballista_core::config::TaskSchedulingPolicy::PullStaged,
        work_dir: Some(work_dir.display().to_string()),
        print_thread_info: false,
        // Ballista's default is 70 % of the host's memory for each executor; trawl's is the
        // same share a local query takes, and --memory-limit sets it.
        memory_pool_size: Some(opts.memory.bytes()),
        job_data_ttl_seconds: STALE_JOB_DATA.as_secs(),
        job_data_clean_up_interval_seconds: 3600,
        grpc_max_decoding_message_size: MAX_MESSAGE_BYTES as u32,
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES as u32,
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
            let runtime = RuntimeEnvBuilder::new()
                .with_temp_file_path(&work_dir_text)
                .with_object_store_registry(server_stores())
                .build()?;
            Ok(Arc::new(runtime))
        })),
        override_config_producer: Some(Arc::new(server_config)),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(BallistaPhysicalExtensionCodec::default())),
        ..Default::default()
    };
    let served =
        start_executor_process(Arc::new(config)).await.map_err(|e| format!("executor at {}: {e}", opts.bind));
    // Ballista returns once a stop signal has drained the running tasks; a folder of our own
    // naming holds only this process's shuffle files, which no one can fetch any more. A folder
    // the user named is theirs to keep.
    if opts.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    served
}

/// What a table provider travels as, the first byte of its encoding.
const LAKE_TABLE: u8 = 1;
const IN_MEMORY: u8 = 2;
const INLINED: u8 = 3;
const SCRATCH: u8 = 4;
/// Before that byte, so a provider encoded by another codec is never misread as trawl's.
const MAGIC: &[u8] = b"trawl";

/// A lake table on the wire: which table of the layout, its store and its live files (for a
/// scratch file, the result's name and that one file).
#[derive(Clone, PartialEq, Message)]
struct LakeScan {
    #[prost(string, tag = "1")]
    table: String,
    #[prost(string, tag = "2")]
    store: String,
    #[prost(message, repeated, tag = "3")]
    files: Vec<datafusion_proto::protobuf::PartitionedFile>,
}

/// Ballista's logical codec, with trawl's table providers: [`LakeTable`], in-memory lists and
/// materialised results (see the module's doc).
#[derive(Debug, Default)]
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

fn codec_err(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("trawl's cluster codec, {what}: {e}"))
}

impl LogicalCodec {
    fn encode_lake(table: &LakeTable, buf: &mut Vec<u8>) -> Result<()> {
        let (name, store, files) = table.parts();
        let files = files
            .iter()
            .map(datafusion_proto::protobuf::PartitionedFile::try_from)
            .collect::<Result<Vec<_>>>()?;
        let scan = LakeScan { table: name.to_string(), store: store.as_str().to_string(), files };
        scan.encode(buf).map_err(|e| codec_err("encoding a lake table", e))
    }

    fn decode_lake(buf: &[u8]) -> Result<Arc<dyn TableProvider>> {
        let scan = LakeScan::decode(buf).map_err(|e| codec_err("decoding a lake table", e))?;
        let spec = table_spec(&scan.table).ok_or_else(|| {
            codec_err("decoding a lake table", format!("no table {:?} in trawl's layout", scan.table))
        })?;
        let files = scan.files.iter().map(PartitionedFile::try_from).collect::<Result<Vec<_>>>()?;
        let store = ObjectStoreUrl::parse(&scan.store)?;
        Ok(Arc::new(LakeTable::from_parts(spec, store, files)?))
    }

    fn encode_scratch(m: &Materialized, file: &ScratchFile, buf: &mut Vec<u8>) -> Result<()> {
        let store = &file.url[..url::Position::BeforePath];
        // Its row count, so the scheduler plans joins with it as with the lake's tables.
        let stats = Statistics::new_unknown(&m.schema()).with_num_rows(Precision::Exact(file.rows as usize));
        let file = file_at(&file.url, file.size)?.with_statistics(Arc::new(stats));
        let files = vec![datafusion_proto::protobuf::PartitionedFile::try_from(&file)?];
        let scan = LakeScan { table: m.name().to_string(), store: store.to_string(), files };
        scan.encode(buf).map_err(|e| codec_err("encoding a scratch file", e))
    }

    fn decode_scratch(buf: &[u8], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let scan = LakeScan::decode(buf).map_err(|e| codec_err("decoding a scratch file", e))?;
        let files = scan.files.iter().map(PartitionedFile::try_from).collect::<Result<Vec<_>>>()?;
        let store = ObjectStoreUrl::parse(&scan.store)?;
        Ok(Arc::new(LakeTable::of_result(&scan.table, schema, store, files)))
    }

    fn encode_memory(table: &MemTable, buf: &mut Vec<u8>) -> Result<()> {
        let mut all = Vec::new();
        for partition in &table.batches {
            // Lists are written once, when registered; nothing holds them for writing now.
            let batches = partition.try_read().map_err(|e| codec_err("reading an in-memory table", e))?;
            all.extend(batches.iter().cloned());
        }
        Self::encode_batches(&table.schema(), &all, buf)
    }

    fn encode_batches(schema: &SchemaRef, batches: &[RecordBatch], buf: &mut Vec<u8>) -> Result<()> {
        let mut writer = StreamWriter::try_new(buf, schema)?;
        for b in batches {
            writer.write(&conform(schema, b)?)?;
        }
        writer.finish()?;
        Ok(())
    }

    fn decode_memory(buf: &[u8], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
        let reader = StreamReader::try_new(buf, None)?;
        let batches = reader
            .map(|b| Ok(RecordBatch::try_new(schema.clone(), b?.columns().to_vec())?))
            .collect::<Result<Vec<RecordBatch>>>()?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(rest) = buf.strip_prefix(MAGIC) else {
            return self.ballista.try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        match rest.split_first() {
            Some((&LAKE_TABLE, body)) => Self::decode_lake(body),
            Some((&IN_MEMORY, body)) => Self::decode_memory(body, schema),
            Some((&SCRATCH, body)) => Self::decode_scratch(body, schema),
            Some((&INLINED, body)) => {
                let node = LogicalPlanNode::try_decode(body)?;
                let plan = node.try_into_logical_plan(ctx, self)?;
                // A view: the scheduler's analyzer inlines it where it is read.
                Ok(Arc::new(ViewTable::new(plan, None)))
            }
            _ => Err(codec_err("decoding", format!("table {table_ref} has an encoding of an unknown kind"))),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let mut body = Vec::new();
        let kind = if let Some(t) = node.downcast_ref::<LakeTable>() {
            Self::encode_lake(t, &mut body)?;
            LAKE_TABLE
        } else if let Some(t) = node.downcast_ref::<MemTable>() {
            Self::encode_memory(t, &mut body)?;
            IN_MEMORY
        } else if let Some(m) = node.downcast_ref::<Materialized>() {
            // Kept in memory only when small enough to ship (see `Shipping`).
            match (m.kept(), m.file()) {
                (Some(batches), _) => {
                    Self::encode_batches(&node.schema(), batches, &mut body)?;
                    IN_MEMORY
                }
                (None, Some(file)) => {
                    Self::encode_scratch(m, file, &mut body)?;
                    SCRATCH
                }
                (None, None) => {
                    LogicalPlanNode::try_from_logical_plan(m.plan(), self)?.try_encode(&mut body)?;
                    INLINED
                }
            }
        } else {
            return self.ballista.try_encode_table_provider(table_ref, node, buf).map_err(|e| {
                codec_err("encoding", format!("table {table_ref} cannot be sent to a cluster: {e}"))
            });
        };
        buf.extend_from_slice(MAGIC);
        buf.push(kind);
        buf.extend_from_slice(&body);
        Ok(())
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn datafusion::datasource::file_format::FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn datafusion::datasource::file_format::FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses() {
        let s = Scheduler::parse("df://127.0.0.1:50051").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 50051));
        assert_eq!(s.url(), "df://127.0.0.1:50051");
        assert_eq!(Scheduler::parse("sched.lan").unwrap().addr(), "sched.lan:50050");
        assert_eq!(Scheduler::parse("df://h:7/").unwrap().addr(), "h:7");
        assert_eq!(Scheduler::parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(Scheduler::parse_timeout("45m"), Ok(Duration::from_secs(45 * 60)));
        assert_eq!(Scheduler::parse_timeout("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(Scheduler::parse_timeout("10"), Ok(Duration::from_secs(600)));
        for bad in ["", "0s", "h", "5d", "-3m"] {
            assert!(Scheduler::parse_timeout(bad).is_err(), "{bad}");
        }
        for bad in ["", "df://", "df://h:x", "df://h:99999", "http://a/b", "df://u@h:1"] {
            assert!(Scheduler::parse(bad).is_err(), "{bad}");
        }
    }
}

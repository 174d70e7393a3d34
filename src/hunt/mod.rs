//! Indicator sweeps: lists of domains, addresses, networks and URLs in, and per indicator what
//! in the lake touched it out (who, when, how much, blocked or allowed), with the indicators
//! nobody touched listed too. Reads the lake only through the engine, one scan per table
//! whatever the number of indicators; never writes the lake.

mod indicator;
mod matcher;
mod sources;
mod sweep;

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};

pub use indicator::{Indicator, Kind, normalise_url, parse_value, refang};
pub use matcher::Matcher;
pub use sources::{IocSet, ListOptions, Unread};
pub use sweep::{Sweep, sweep};

use crate::engine::{QueryError, allow_domains_schema};

/// Problems that stop a hunt: a list that cannot be read at all, or the lake's SQL failing.
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("scanning table {table}: {message}")]
    Scan { table: String, message: String },
}

/// Known-benign or popular names and addresses (`--allow`): indicators they cover are marked,
/// and their domains are the `allow_domains` table detections can join.
#[derive(Debug, Default)]
pub struct AllowList {
    pub set: IocSet,
    matcher: Matcher,
}

impl AllowList {
    /// Reads allow or popularity lists, in any format indicator lists come in.
    pub fn load(paths: &[impl AsRef<Path>], opts: &ListOptions) -> Result<AllowList, HuntError> {
        let set = IocSet::load(paths, opts)?;
        let matcher = Matcher::new(&set.indicators);
        Ok(AllowList { set, matcher })
    }

    /// Whether the list holds nothing.
    pub fn is_empty(&self) -> bool {
        self.set.indicators.is_empty()
    }

    /// Whether the list covers an indicator: its domain or a parent of it, its address or a
    /// network holding it, or the host of its URL.
    pub fn covers(&self, ind: &Indicator) -> bool {
        let mut out = Vec::new();
        match ind.kind {
            Kind::Domain => self.matcher.host(&ind.key, &mut out),
            Kind::Ip => self.matcher.ip(&ind.key, &mut out),
            Kind::Cidr => self.matcher.ip(ind.key.split('/').next().unwrap_or_default(), &mut out),
            Kind::Url | Kind::UrlPrefix => {
                let full =
                    if ind.key.contains("://") { ind.key.clone() } else { format!("http://{}", ind.key) };
                if let Some(host) = crate::urlparts::split_url(full.as_bytes()).host {
                    self.matcher.host(&String::from_utf8_lossy(host), &mut out);
                }
                self.matcher.url(&full, &mut out);
            }
        }
        !out.is_empty()
    }

    /// The `allow_domains` table: one row per domain on the lists.
    pub fn domains_batch(&self) -> RecordBatch {
        let domains: StringArray = self
            .set
            .indicators
            .iter()
            .filter(|i| i.kind == Kind::Domain)
            .map(|i| Some(i.key.as_str()))
            .collect();
        RecordBatch::try_new(allow_domains_schema(), vec![Arc::new(domains) as ArrayRef])
            .expect("one string column, as the schema says")
    }
}

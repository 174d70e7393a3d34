//! trawl's SQL functions, registered in one place so a local session and a cluster's executors
//! get the same list.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{Array, ArrayRef, Int64Builder, StringBuilder, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarFunctionImplementation, ScalarUDF, ScalarUDFImpl, Signature,
    SimpleScalarUDF, TypeSignature, Volatility,
};

use super::geoip::GeoIp;
use crate::localtime::offset_at;
use crate::urlparts::{split_url, uri_extension, uri_query, uri_stem};

/// Calls `f` with each string of `input` (Utf8, Utf8View as the lake's columns are read, or
/// LargeUtf8), without casting it first.
fn for_each_string<'a>(input: &'a ArrayRef, f: impl FnMut(Option<&'a str>)) -> DfResult<()> {
    use datafusion::arrow::array::AsArray;
    match input.data_type() {
        DataType::Utf8View => input.as_string_view().iter().for_each(f),
        DataType::Utf8 => input.as_string::<i32>().iter().for_each(f),
        DataType::LargeUtf8 => input.as_string::<i64>().iter().for_each(f),
        other => return Err(DataFusionError::Execution(format!("expected a string argument, got {other}"))),
    }
    Ok(())
}

/// A scalar when every argument was one, else the array.
fn columnar(args: &[ColumnarValue], out: ArrayRef) -> DfResult<ColumnarValue> {
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// Applies `f` to each string of the first argument; `f` may return a slice of its input, so
/// the common case allocates nothing per row. Results of repeated values within a batch are
/// reused (hosts and agents repeat heavily: a few hundred distinct in a batch of thousands).
fn utf8_map(
    args: &[ColumnarValue],
    f: impl for<'s> Fn(&'s str) -> Option<Cow<'s, str>>,
) -> DfResult<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let input = &arrays[0];
    let mut out = StringBuilder::with_capacity(input.len(), input.len() * 16);
    let mut seen: HashMap<&str, Option<Cow<'_, str>>> = HashMap::new();
    for_each_string(input, |v| match v {
        None => out.append_null(),
        Some(s) => out.append_option(seen.entry(s).or_insert_with(|| f(s)).as_deref()),
    })?;
    columnar(args, Arc::new(out.finish()))
}

/// The same for a function giving an integer.
fn int_map(args: &[ColumnarValue], f: impl Fn(&str) -> Option<i64>) -> DfResult<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let input = &arrays[0];
    let mut out = Int64Builder::with_capacity(input.len());
    let mut seen: HashMap<&str, Option<i64>> = HashMap::new();
    for_each_string(input, |v| out.append_option(v.and_then(|s| *seen.entry(s).or_insert_with(|| f(s)))))?;
    columnar(args, Arc::new(out.finish()))
}

/// Registrable domain by the Public Suffix List: `a.b.example.co.jp` gives `example.co.jp`.
/// IP addresses come back unchanged; names without a known suffix give NULL. A lower-case host
/// (the usual case) gives a slice of itself.
pub fn reg_domain(host: &str) -> Option<Cow<'_, str>> {
    let trimmed = host.trim_end_matches('.');
    let host: Cow<'_, str> = if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    };
    if host.parse::<IpAddr>().is_ok() {
        return Some(host);
    }
    match host {
        Cow::Borrowed(h) => psl::domain_str(h).map(Cow::Borrowed),
        Cow::Owned(h) => psl::domain_str(&h).map(|d| Cow::Owned(d.to_string())),
    }
}

/// A network in CIDR form (`10.0.0.0/8`, `fc00::/7`; a bare address is a single host).
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let s = s.trim();
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr: IpAddr =
        addr.parse().map_err(|_| format!("{s:?} is not an IPv4 or IPv6 network (a.b.c.d/n)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("{s:?}: prefix length over {max}"))?,
        None => max,
    };
    Ok((addr, bits))
}

/// Whether an address (as logged: IPv4, IPv6, `[v6]`, v4-mapped v6) lies in the network.
/// Host names and other text are not addresses and never match.
pub fn in_cidr(addr: &str, net: (IpAddr, u8)) -> bool {
    let addr = addr.trim().trim_start_matches('[').trim_end_matches(']');
    let Ok(addr) = addr.parse::<IpAddr>() else { return false };
    let (net_addr, bits) = net;
    let mask = |width: u32| if bits == 0 { 0u128 } else { u128::MAX << (width - u32::from(bits)) };
    match (addr, net_addr) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(32) as u32;
            u32::from(a) & m == u32::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(128);
            u128::from(a) & m == u128::from(n) & m
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a.to_ipv4_mapped().is_some_and(|a| in_cidr(&a.to_string(), net)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// `cidr_match(address, network)`: parses both (not a string prefix); NULL address gives NULL.
fn cidr_match(args: &[ColumnarValue]) -> DfResult<ColumnarValue> {
    use datafusion::arrow::array::BooleanArray;
    use datafusion::arrow::compute::cast;
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let addrs = cast(&arrays[0], &DataType::Utf8)?;
    let nets = cast(&arrays[1], &DataType::Utf8)?;
    let addrs = addrs.as_any().downcast_ref::<datafusion::arrow::array::StringArray>();
    let nets = nets.as_any().downcast_ref::<datafusion::arrow::array::StringArray>();
    let (Some(addrs), Some(nets)) = (addrs, nets) else {
        return Err(DataFusionError::Execution("cidr_match expects two strings".into()));
    };
    let mut parsed: HashMap<&str, (IpAddr, u8)> = HashMap::new();
    let mut out = Vec::with_capacity(addrs.len());
    for (a, n) in addrs.iter().zip(nets.iter()) {
        let (Some(a), Some(n)) = (a, n) else {
            out.push(None);
            continue;
        };
        let net = match parsed.get(n) {
            Some(net) => *net,
            None => {
                let net =
                    parse_cidr(n).map_err(|e| DataFusionError::Execution(format!("cidr_match: {e}")))?;
                *parsed.entry(n).or_insert(net)
            }
        };
        out.push(Some(in_cidr(a, net)));
    }
    let out: ArrayRef = Arc::new(BooleanArray::from(out));
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

/// `fingerprint(v, ...)`: a 64-bit hash (xxHash64) of its arguments read as text (NULL hashed as
/// a value of its own), the same for the same values on every run and machine: one narrow join key
/// standing in for several wide ones (a client, a method and a URL), where a hash table of the
/// strings themselves would hold every URL of the lake.
fn fingerprint(args: &[ColumnarValue]) -> DfResult<ColumnarValue> {
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::compute::cast;
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let texts = arrays.iter().map(|a| cast(a, &DataType::Utf8View)).collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<_> = texts.iter().map(|a| a.as_string_view()).collect();
    let rows = arrays.first().map_or(1, |a| a.len());
    // Each value as a presence byte, its length and its bytes, so ("ab", "c") and ("a", "bc")
    // differ; one buffer for the whole batch.
    let mut buf = Vec::with_capacity(256);
    let out: Int64Array = (0..rows)
        .map(|i| {
            buf.clear();
            for t in &texts {
                if t.is_valid(i) {
                    let v = t.value(i).as_bytes();
                    buf.push(1);
                    buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    buf.extend_from_slice(v);
                } else {
                    buf.push(0);
                }
            }
            // The bits as they are: only equality matters.
            Some(twox_hash::XxHash64::oneshot(0, &buf) as i64)
        })
        .collect();
    columnar(args, Arc::new(out))
}

/// A one-string-argument function taking any of Arrow's string types and giving a string.
fn string_udf(name: &str, fun: ScalarFunctionImplementation) -> ScalarUDF {
    string_arg_udf(name, DataType::Utf8, fun)
}

/// A one-string-argument function taking any of Arrow's string types.
fn string_arg_udf(name: &str, returns: DataType, fun: ScalarFunctionImplementation) -> ScalarUDF {
    let strings = [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8];
    let signature = Signature::one_of(
        strings.into_iter().map(|t| TypeSignature::Exact(vec![t])).collect(),
        Volatility::Immutable,
    );
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(name, signature, returns, fun))
}

/// What a user agent is, by woothee's rules: browser name, OS name, device category (`pc`,
/// `smartphone`, `mobilephone`, `appliance`, `crawler`, `misc`); `UNKNOWN` when not recognised,
/// as woothee says it.
pub fn user_agent(ua: &str, part: UaPart) -> Option<&str> {
    static PARSER: std::sync::LazyLock<woothee::parser::Parser> =
        std::sync::LazyLock::new(woothee::parser::Parser::new);
    // woothee gives no result at all for some agents it does not know (python-requests/2.31),
    // and UNKNOWN fields for others: both are UNKNOWN here, and NULL stays for agents not logged.
    let Some(r) = PARSER.parse(ua) else { return Some("UNKNOWN") };
    Some(match part {
        UaPart::Browser => r.name,
        UaPart::Os => r.os,
        UaPart::Device => r.category,
    })
}

/// `Chrome on Windows 10`, `HTTP Library`, `(blank)`: what an agent is in one phrase, the
/// browser and its OS (left out when woothee does not know it). `ua_name(ua)` in SQL.
pub fn describe_agent(ua: &str) -> String {
    if ua.is_empty() {
        return "(blank)".into();
    }
    let browser = user_agent(ua, UaPart::Browser).unwrap_or("UNKNOWN");
    match user_agent(ua, UaPart::Os) {
        Some(os) if os != "UNKNOWN" => format!("{browser} on {os}"),
        _ => browser.to_string(),
    }
}

/// Which part of a user agent `user_agent` gives.
#[derive(Debug, Clone, Copy)]
pub enum UaPart {
    Browser,
    Os,
    Device,
}

/// trawl's session options: set where a session is made, and sent with every statement a
/// cluster runs, so executors apply the lake's settings without being told them at start.
#[derive(Debug, Clone, Default)]
pub struct TrawlOptions {
    /// The lake's time zone (IANA name), which `local_ts` turns instants into wall times in.
    pub tz: Option<String>,
}

// By hand rather than with DataFusion's `extensions_options!`, whose entries drop the `trawl.`
// prefix: Ballista sends a session's options as its entries, and `tz` alone would not be set.
impl datafusion::config::ExtensionOptions for TrawlOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn cloned(&self) -> Box<dyn datafusion::config::ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
        match key {
            "tz" => {
                self.tz = Some(value.to_string());
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!("no trawl option {key:?} (there is trawl.tz)"))),
        }
    }

    fn entries(&self) -> Vec<datafusion::config::ConfigEntry> {
        vec![datafusion::config::ConfigEntry {
            key: "trawl.tz".to_string(),
            value: self.tz.clone(),
            description: "the lake's time zone, in which local_ts gives wall times",
        }]
    }
}

impl datafusion::config::ConfigExtension for TrawlOptions {
    const PREFIX: &'static str = "trawl";
}

/// Sets the zone `local_ts` reads from the session's options.
fn set_zone(ctx: &SessionContext, tz: Tz) {
    let state = ctx.state_ref();
    let mut state = state.write();
    let options = state.config_mut().options_mut();
    let mut trawl = options.extensions.get::<TrawlOptions>().cloned().unwrap_or_default();
    trawl.tz = Some(tz.name().to_string());
    options.extensions.insert(trawl);
}

/// `local_ts(ts)`: the wall time of an instant in the lake's zone, which it reads from the
/// session's `trawl.tz` option where it runs (a cluster's executors get it with the statement).
#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalTs {
    signature: Signature,
}

impl LocalTs {
    fn new() -> LocalTs {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        LocalTs { signature: Signature::exact(vec![utc], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for LocalTs {
    fn name(&self) -> &str {
        "local_ts"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let zone = args.config_options.extensions.get::<TrawlOptions>().and_then(|o| o.tz.as_deref());
        let tz: Tz = match zone {
            Some(name) => name.parse().map_err(|_| {
                DataFusionError::Execution(format!("local_ts: {name:?} (trawl.tz) is not a time zone"))
            })?,
            None => {
                return Err(DataFusionError::Execution(
                    "local_ts: the session has no lake time zone (trawl.tz): run statements \
                     through trawl, whose executors (`trawl cluster executor`) receive it with \
                     each statement"
                        .into(),
                ));
            }
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let ts = arrays[0]
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| DataFusionError::Execution("local_ts expects a timestamp".into()))?;
        let out: TimestampMicrosecondArray = ts
            .iter()
            .map(|v| v.map(|us| us + offset_at(&tz, us.div_euclid(1_000_000)) as i64 * 1_000_000))
            .collect();
        let out: ArrayRef = Arc::new(out);
        Ok(if out.len() == 1 && matches!(args.args[0], ColumnarValue::Scalar(_)) {
            ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
        } else {
            ColumnarValue::Array(out)
        })
    }
}

/// Registers every trawl SQL function on `ctx`; `tz` is the lake's zone (for `local_ts`), and
/// `geoip` the databases behind `ip_country`, `ip_asn` and `ip_org` (NULL for every address
/// when there are none). Registering again replaces the functions.
pub fn register_functions(ctx: &SessionContext, tz: Tz, geoip: Option<Arc<GeoIp>>) {
    for f in functions(geoip) {
        ctx.register_udf(f);
    }
    set_zone(ctx, tz);
}

/// Every trawl SQL function, the one list a local session and a cluster's scheduler and
/// executors register; `geoip` as for [`register_functions`].
pub fn functions(geoip: Option<Arc<GeoIp>>) -> Vec<ScalarUDF> {
    let mut out = Vec::new();
    for (name, part) in
        [("ua_browser", UaPart::Browser), ("ua_os", UaPart::Os), ("ua_device", UaPart::Device)]
    {
        let f = Arc::new(move |args: &[ColumnarValue]| {
            utf8_map(args, |ua| user_agent(ua, part).map(Cow::Borrowed))
        });
        out.push(string_udf(name, f));
    }
    out.push(string_udf(
        "ua_name",
        Arc::new(|args| utf8_map(args, |ua| Some(Cow::Owned(describe_agent(ua))))),
    ));
    let db = geoip.clone();
    out.push(string_udf(
        "ip_country",
        Arc::new(move |args| utf8_map(args, |ip| db.as_ref()?.country(ip).map(Cow::Owned))),
    ));
    let db = geoip.clone();
    out.push(string_udf(
        "ip_org",
        Arc::new(move |args| utf8_map(args, |ip| db.as_ref()?.org(ip).map(Cow::Owned))),
    ));
    let db = geoip;
    out.push(string_arg_udf(
        "ip_asn",
        DataType::Int64,
        Arc::new(move |args| int_map(args, |ip| db.as_ref()?.asn(ip).map(i64::from))),
    ));
    out.push(string_udf("reg_domain", Arc::new(|args| utf8_map(args, reg_domain))));
    out.push(string_udf(
        "url_host",
        Arc::new(|args| {
            utf8_map(args, |u| {
                let host = split_url(u.as_bytes()).host?;
                Some(Cow::Owned(String::from_utf8_lossy(host).to_ascii_lowercase()))
            })
        }),
    ));
    // Sigma's derived proxy fields, computed from `path` rather than stored twice.
    out.push(string_udf("uri_stem", Arc::new(|args| utf8_map(args, |p| Some(Cow::Borrowed(uri_stem(p)))))));
    out.push(string_udf("uri_query", Arc::new(|args| utf8_map(args, |p| uri_query(p).map(Cow::Borrowed)))));
    out.push(string_udf(
        "uri_extension",
        Arc::new(|args| utf8_map(args, |p| uri_extension(p).map(Cow::Borrowed))),
    ));
    out.push(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "fingerprint",
        Signature::variadic_any(Volatility::Immutable),
        DataType::Int64,
        Arc::new(fingerprint),
    )));
    out.push(ScalarUDF::from(SimpleScalarUDF::new_with_signature(
        "cidr_match",
        Signature::string(2, Volatility::Immutable),
        DataType::Boolean,
        Arc::new(cidr_match),
    )));
    out.push(ScalarUDF::from(LocalTs::new()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_addresses() {
        let net = |s| parse_cidr(s).unwrap();
        assert!(in_cidr("10.200.1.2", net("10.0.0.0/8")));
        assert!(!in_cidr("100.0.0.1", net("10.0.0.0/8")));
        assert!(
            in_cidr("172.31.255.255", net("172.16.0.0/12")) && !in_cidr("172.32.0.1", net("172.16.0.0/12"))
        );
        assert!(in_cidr("FE80::1", net("fe80::/10")) && in_cidr("[::1]", net("::1/128")));
        assert!(in_cidr("::ffff:192.168.1.1", net("192.168.0.0/16")));
        assert!(!in_cidr("10.example.com", net("10.0.0.0/8")) && in_cidr("8.8.8.8", net("0.0.0.0/0")));
        assert!(parse_cidr("10.0.0.0/33").is_err() && parse_cidr("10.0.0/8").is_err());
    }

    #[test]
    fn registrable_domains() {
        assert_eq!(reg_domain("a.b.example.co.jp").as_deref(), Some("example.co.jp"));
        assert_eq!(reg_domain("WWW.Example.COM").as_deref(), Some("example.com"));
        assert_eq!(reg_domain("10.1.2.3").as_deref(), Some("10.1.2.3"));
        assert_eq!(reg_domain("drive.google.com").as_deref(), Some("google.com"));
        assert_eq!(reg_domain("x.example.com."), Some(Cow::Borrowed("example.com")));
        assert_eq!(reg_domain("localhost"), None);
    }

    /// The lake's strings arrive as Utf8View, lists' as Utf8: both are read without a cast,
    /// and repeated values within a batch give the same answer as the first.
    #[test]
    fn string_functions_take_every_string_type() {
        let ctx = SessionContext::new();
        register_functions(&ctx, chrono_tz::Asia::Tokyo, None);
        let sql = "SELECT reg_domain(arrow_cast(h, 'Utf8View')) AS v, reg_domain(h) AS s, \
                   url_host(arrow_cast(u, 'LargeUtf8')) AS l \
                   FROM (VALUES ('a.Example.COM', 'http://A.b/x'), ('a.Example.COM', 'http://A.b/x'), \
                   ('a.example.com', NULL), (NULL, 'http:///')) t(h, u)";
        let batches = crate::runtime().block_on(async { ctx.sql(sql).await?.collect().await }).unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).skip(1).collect();
        assert_eq!(
            rows,
            [
                "| example.com | example.com | a.b |",
                "| example.com | example.com | a.b |",
                "| example.com | example.com |     |",
                "|             |             |     |",
            ]
        );
    }

    /// Equal for equal values whatever their string type; values do not run into each other, and
    /// NULL is not the empty string; the same number on every machine (xxHash64 of a fixed layout).
    #[test]
    fn fingerprints_tell_values_apart_and_are_stable() {
        let ctx = SessionContext::new();
        register_functions(&ctx, chrono_tz::Asia::Tokyo, None);
        let sql = "SELECT fingerprint('ab', 'c') = fingerprint(arrow_cast('ab', 'Utf8View'), arrow_cast('c', 'LargeUtf8')), \
                   fingerprint('ab', 'c') <> fingerprint('a', 'bc'), \
                   fingerprint(NULL, 'c') <> fingerprint('', 'c'), fingerprint(1, 'x') = fingerprint('1', 'x'), \
                   fingerprint('10.0.0.1', 'GET', 'http://a/')";
        let batches = crate::runtime().block_on(async { ctx.sql(sql).await?.collect().await }).unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        let row = text.lines().filter(|l| l.starts_with('|')).nth(1).unwrap().to_string();
        let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(&cells[..4], ["true", "true", "true", "true"]);
        // Pinned: a fingerprint kept in a saved query's output means the same row next year.
        assert_eq!(cells[4], "4956808282579666532");
    }
}

//! trawl's SQL functions, registered in one place so a local session and a cluster's executors
//! get the same list.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono_tz::Tz;
use datafusion::arrow::array::{Array, ArrayRef, StringBuilder, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionImplementation, ScalarUDF, Signature, SimpleScalarUDF, TypeSignature, Volatility,
    create_udf,
};

use crate::localtime::offset_at;
use crate::urlparts::split_url;

/// Applies `f` to each string of the first argument (Utf8, Utf8View as the lake's columns are
/// read, or LargeUtf8) without casting it first; `f` may return a slice of its input, so the
/// common case allocates nothing per row. Results of repeated values within a batch are reused
/// (hosts repeat heavily: a few hundred distinct in a batch of thousands of rows).
fn utf8_map(
    args: &[ColumnarValue],
    f: impl for<'s> Fn(&'s str) -> Option<Cow<'s, str>>,
) -> DfResult<ColumnarValue> {
    use datafusion::arrow::array::AsArray;
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let input = &arrays[0];
    let mut out = StringBuilder::with_capacity(input.len(), input.len() * 16);
    match input.data_type() {
        DataType::Utf8View => map_strings(input.as_string_view().iter(), &f, &mut out),
        DataType::Utf8 => map_strings(input.as_string::<i32>().iter(), &f, &mut out),
        DataType::LargeUtf8 => map_strings(input.as_string::<i64>().iter(), &f, &mut out),
        other => return Err(DataFusionError::Execution(format!("expected a string argument, got {other}"))),
    }
    let out: ArrayRef = Arc::new(out.finish());
    Ok(if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
    } else {
        ColumnarValue::Array(out)
    })
}

fn map_strings<'a>(
    values: impl Iterator<Item = Option<&'a str>>,
    f: &impl Fn(&'a str) -> Option<Cow<'a, str>>,
    out: &mut StringBuilder,
) {
    let mut seen: HashMap<&'a str, Option<Cow<'a, str>>> = HashMap::new();
    for v in values {
        match v {
            None => out.append_null(),
            Some(s) => out.append_option(seen.entry(s).or_insert_with(|| f(s)).as_deref()),
        }
    }
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

/// A one-string-argument function taking any of Arrow's string types.
fn string_udf(name: &str, fun: ScalarFunctionImplementation) -> ScalarUDF {
    let strings = [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8];
    let signature = Signature::one_of(
        strings.into_iter().map(|t| TypeSignature::Exact(vec![t])).collect(),
        Volatility::Immutable,
    );
    ScalarUDF::from(SimpleScalarUDF::new_with_signature(name, signature, DataType::Utf8, fun))
}

/// Registers every trawl SQL function on `ctx`; `tz` is the lake's zone (for `local_ts`).
pub fn register_functions(ctx: &SessionContext, tz: Tz) {
    ctx.register_udf(string_udf("reg_domain", Arc::new(|args| utf8_map(args, reg_domain))));
    ctx.register_udf(string_udf(
        "url_host",
        Arc::new(|args| {
            utf8_map(args, |u| {
                let host = split_url(u.as_bytes()).host?;
                Some(Cow::Owned(String::from_utf8_lossy(host).to_ascii_lowercase()))
            })
        }),
    ));
    let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    ctx.register_udf(create_udf(
        "local_ts",
        vec![utc],
        DataType::Timestamp(TimeUnit::Microsecond, None),
        Volatility::Immutable,
        Arc::new(move |args| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let ts = arrays[0]
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| DataFusionError::Execution("local_ts expects a timestamp".into()))?;
            let out: TimestampMicrosecondArray = ts
                .iter()
                .map(|v| v.map(|us| us + offset_at(&tz, us.div_euclid(1_000_000)) as i64 * 1_000_000))
                .collect();
            let out: ArrayRef = Arc::new(out);
            Ok(if out.len() == 1 && matches!(args[0], ColumnarValue::Scalar(_)) {
                ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?)
            } else {
                ColumnarValue::Array(out)
            })
        }),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

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
        register_functions(&ctx, chrono_tz::Asia::Tokyo);
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
}

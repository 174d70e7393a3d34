//! HTML pieces: escaping, tables, and the page around the sections. Nothing here refers to
//! anything outside the file: no scripts, fonts, images or style sheets by address.

use std::fmt::Write as _;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::pseudo::Pseudonymiser;

/// Text for HTML (element content or a quoted attribute). URLs out of the logs keep their
/// look but not their form: the colon of `://` is written as a character reference, so the
/// file holds no address a viewer could fetch or turn into a link.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("://") {
            out.push_str("&#58;//");
            rest = &rest[3..];
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Column names and display text of every row ("NULL" for nulls, as the terminal shows them).
pub fn rows_of(schema: &SchemaRef, batches: &[RecordBatch]) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let Ok(f) = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        for r in 0..b.num_rows() {
            rows.push(f.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    (columns, rows)
}

/// A table of at most `max` rows; cells pass through the pseudonymiser by their column. Cells
/// that are numbers are right-aligned.
pub fn table(columns: &[String], rows: &[Vec<String>], max: usize, p: &Pseudonymiser) -> String {
    let mut out = String::from("<table><thead><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows.iter().take(max) {
        out.push_str("<tr>");
        for (c, v) in columns.iter().zip(row) {
            let class = if v.parse::<f64>().is_ok() { " class=\"n\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(&p.cell(c, v)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// The whole page: `sections` are already HTML.
pub fn page(lang: &str, title: &str, sections: &[String]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>",
        escape(title)
    );
    for s in sections {
        out.push_str(s);
    }
    out.push_str("</body></html>\n");
    out
}

/// Screen and print (A4, each section on a new page); only fonts already on the machine. A
/// link to `#findings` (or any section) shows that section alone, without a script.
const CSS: &str = "\
body{font-family:'Noto Sans CJK JP','Noto Sans JP','Hiragino Sans','Yu Gothic','Meiryo',sans-serif;\
margin:2em auto;max-width:1100px;color:#1a202c;font-size:14px;line-height:1.45;padding:0 1em}\
h1{font-size:1.7em;border-bottom:3px solid #2b6cb0;padding-bottom:.2em}\
h2{font-size:1.35em;border-bottom:1px solid #a0aec0;margin-top:1.5em}\
h3{font-size:1.1em;margin:1.2em 0 .3em}\
section{margin-bottom:2.5em}\
table{border-collapse:collapse;margin:.4em 0 1em;font-size:12px;width:100%}\
th,td{border:1px solid #cbd5e0;padding:2px 6px;text-align:left;vertical-align:top;word-break:break-all}\
th{background:#edf2f7}td.n{text-align:right;white-space:nowrap}\
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.meta dt{font-weight:bold}\
dl.meta dd{margin:0}\
.sev{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-size:.85em;margin-right:.4em}\
.sev-critical{background:#742a2a}.sev-high{background:#c53030}.sev-medium{background:#dd6b20}\
.sev-low{background:#d69e2e}.sev-info{background:#718096}\
.warn{background:#fff5f5;border-left:4px solid #c53030;padding:.3em .6em;margin:.4em 0}\
.note{background:#fffff0;border-left:4px solid #d69e2e;padding:.3em .6em;margin:.4em 0}\
.legend span{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .3em 0 1em}\
.finding{border-top:1px solid #e2e8f0;padding-top:.5em;break-inside:avoid-page}\
.cols{display:grid;grid-template-columns:1fr 1fr;gap:0 1.5em}\
svg.chart{max-width:100%;height:auto;margin:.3em 0}\
body:has(section:target) section:not(:target){display:none}\
@page{size:A4;margin:12mm}\
@media print{body{max-width:none;margin:0;font-size:10px}section{break-before:page}\
section:first-of-type{break-before:auto}table{font-size:9px}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_disarms_urls() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(escape("https://例.jp/a"), "https&#58;//例.jp/a");
    }
}

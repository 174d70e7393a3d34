//! Keyed pseudonyms: user names and internal addresses replaced by HMAC-SHA-256 of the value
//! under the analyst's key, so one person is one pseudonym in every table, chart and CSV of a
//! case, and nobody without the key can go back.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ReportError;

/// Columns whose values name a person (or the client standing for one).
const PERSON_COLUMNS: &[&str] = &["username", "who", "user", "users", "entity", "top_entity", "user_name"];

/// Shortest key accepted: below this a key could be guessed by trying.
const MIN_KEY_BYTES: usize = 16;

/// Replaces names and internal addresses; the identity when no key was given.
#[derive(Clone, Default)]
pub struct Pseudonymiser {
    key: Option<Vec<u8>>,
}

impl Pseudonymiser {
    /// Nothing replaced.
    pub fn none() -> Self {
        Pseudonymiser { key: None }
    }

    /// A pseudonymiser keyed with the bytes of `path` (a trailing newline is ignored, so a key
    /// typed into an editor and one written by `head -c 32 /dev/urandom` both work).
    pub fn from_key_file(path: &Path) -> Result<Self, ReportError> {
        let mut key = std::fs::read(path)
            .map_err(|e| ReportError::Key { path: path.display().to_string(), reason: e.to_string() })?;
        while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            key.pop();
        }
        if key.len() < MIN_KEY_BYTES {
            return Err(ReportError::Key {
                path: path.display().to_string(),
                reason: format!(
                    "{} bytes; use at least {MIN_KEY_BYTES} random bytes (head -c 32 /dev/urandom > case.key)",
                    key.len()
                ),
            });
        }
        Ok(Self::from_key(key))
    }

    /// A pseudonymiser keyed with these bytes.
    pub fn from_key(key: Vec<u8>) -> Self {
        Pseudonymiser { key: Some(key) }
    }

    /// Whether anything is replaced.
    pub fn active(&self) -> bool {
        self.key.is_some()
    }

    fn tag(&self, kind: &str, value: &str) -> Option<String> {
        let key = self.key.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("{kind}-{hex}"))
    }

    /// A person's name as shown.
    pub fn user(&self, name: &str) -> String {
        if let Some(ip) = internal_ip(name) {
            return self.tag("ip", &ip.to_string()).unwrap_or_else(|| name.to_string());
        }
        self.tag("user", name).unwrap_or_else(|| name.to_string())
    }

    /// A value of column `column` as shown: names in person columns and internal addresses in
    /// any column are replaced; everything else is kept.
    pub fn cell(&self, column: &str, value: &str) -> String {
        if !self.active() || value.is_empty() || value == "NULL" {
            return value.to_string();
        }
        if let Some(ip) = internal_ip(value) {
            return self.tag("ip", &ip.to_string()).unwrap_or_else(|| value.to_string());
        }
        if PERSON_COLUMNS.contains(&column) {
            return self.user(value);
        }
        self.text(value)
    }

    /// Free text (a URL, `ALLOW TCP 10.1.0.5:445`) with each internal address in it replaced.
    pub fn text(&self, value: &str) -> String {
        if !self.active() {
            return value.to_string();
        }
        let mut out = Vec::new();
        for token in value.split(' ') {
            let after_scheme = token.find("://").map_or(0, |i| i + 3);
            let rest = &token[after_scheme..];
            let host_end = rest.find('/').unwrap_or(rest.len());
            let mut host = &rest[..host_end];
            // IPv4 with a port; bracketed or bare IPv6 keep their colons.
            if host.matches(':').count() == 1 {
                host = &host[..host.find(':').unwrap_or(host.len())];
            }
            let host = host.trim_start_matches('[').trim_end_matches(']');
            match internal_ip(host) {
                Some(ip) if !host.is_empty() => {
                    let tag = self.tag("ip", &ip.to_string()).unwrap_or_default();
                    out.push(token.replacen(host, &tag, 1));
                }
                _ => out.push(token.to_string()),
            }
        }
        out.join(" ")
    }

    /// The batch with every text cell passed through [`Pseudonymiser::cell`] (for CSV files);
    /// string columns come back as plain UTF-8.
    pub fn batch(&self, batch: &RecordBatch) -> Result<RecordBatch, ReportError> {
        if !self.active() {
            return Ok(batch.clone());
        }
        let options = FormatOptions::default();
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            if matches!(f.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) {
                let fmt = ArrayFormatter::try_new(c.as_ref(), &options)?;
                let text: StringArray = (0..c.len())
                    .map(|i| c.is_valid(i).then(|| self.cell(f.name(), &fmt.value(i).to_string())))
                    .collect();
                fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
                columns.push(Arc::new(text));
            } else {
                fields.push(f.as_ref().clone());
                columns.push(c.clone());
            }
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
    }
}

/// An address on the internet: one that parses, is not internal (see `internal_ip`), and is
/// no unspecified, multicast or broadcast address.
pub(super) fn public_ip(s: &str) -> bool {
    let Ok(ip) = s.trim().parse::<IpAddr>() else { return false };
    let special = match ip {
        IpAddr::V4(v) => v.is_unspecified() || v.is_multicast() || v.is_broadcast(),
        IpAddr::V6(v) => v.is_unspecified() || v.is_multicast(),
    };
    !special && internal_ip(s).is_none()
}

/// An address inside the organisation: private, loopback, link-local, unique-local.
fn internal_ip(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.trim().parse().ok()?;
    let internal = match ip {
        IpAddr::V4(v) => v.is_private() || v.is_loopback() || v.is_link_local(),
        IpAddr::V6(v) => {
            v.is_loopback() || (v.segments()[0] & 0xfe00) == 0xfc00 || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    internal.then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_only_for_people_and_internal_addresses() {
        let p = Pseudonymiser::from_key(b"0123456789abcdef".to_vec());
        let q = Pseudonymiser::from_key(b"another key of 16".to_vec());
        let tanaka = p.cell("who", "exfil.tanaka");
        assert!(tanaka.starts_with("user-") && tanaka.len() == 15, "{tanaka}");
        assert_eq!(p.cell("username", "exfil.tanaka"), tanaka);
        assert_eq!(p.user("exfil.tanaka"), tanaka);
        assert_ne!(q.cell("who", "exfil.tanaka"), tanaka);
        let ip = p.cell("client_ip", "10.1.0.17");
        assert!(ip.starts_with("ip-"), "{ip}");
        assert_eq!(p.cell("who", "10.1.0.17"), ip);
        assert_eq!(p.cell("host", "203.0.113.5"), "203.0.113.5");
        assert_eq!(p.cell("domain", "dropboxapi.com"), "dropboxapi.com");
        assert_eq!(p.cell("what", "ALLOW TCP 10.1.0.17:445"), format!("ALLOW TCP {ip}:445"));
        assert_eq!(p.cell("sample_url", "http://10.1.0.17/x"), format!("http://{ip}/x"));
        assert_eq!(Pseudonymiser::none().cell("who", "exfil.tanaka"), "exfil.tanaka");
    }
}

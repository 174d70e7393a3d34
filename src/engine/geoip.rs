//! MaxMind-format databases (`.mmdb`: country, city or ASN) behind the `ip_country`, `ip_asn`
//! and `ip_org` SQL functions. Several may be given (a country and an ASN database, say): each
//! lookup takes the first database that knows the answer.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;

/// A database could not be opened or is not in MaxMind's format.
#[derive(Debug, thiserror::Error)]
#[error(
    "--geoip {path}: {reason} (expected a MaxMind-format .mmdb such as GeoLite2-Country or GeoLite2-ASN)"
)]
pub struct GeoIpError {
    pub path: String,
    pub reason: String,
}

/// Open `.mmdb` databases, in the order given.
pub struct GeoIp {
    readers: Vec<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.readers.iter().map(|r| r.metadata().database_type.as_str()).collect();
        f.debug_struct("GeoIp").field("databases", &kinds).finish()
    }
}

/// The fields read from a record, under the names MaxMind's and the common free databases use.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    registered_country: Option<Country<'a>>,
    /// ip-location-db style country databases.
    country_code: Option<&'a str>,
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

impl GeoIp {
    /// Opens each database; an unreadable or malformed file is an error naming it.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<GeoIp, GeoIpError> {
        let mut readers = Vec::new();
        for p in paths {
            let path = p.as_ref();
            let err = |reason: String| GeoIpError { path: path.display().to_string(), reason };
            let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
            readers.push(Reader::from_source(bytes).map_err(|e| err(e.to_string()))?);
        }
        Ok(GeoIp { readers })
    }

    /// Applies `f` to the record for `ip` in each database until one gives an answer.
    fn first<T>(&self, ip: &str, f: impl Fn(&Record<'_>) -> Option<T>) -> Option<T> {
        let ip: IpAddr = ip.trim().trim_start_matches('[').trim_end_matches(']').parse().ok()?;
        self.readers.iter().find_map(|r| {
            // An IPv6 address looked up in an IPv4-only database is an error, not an answer.
            let found = r.lookup(ip).ok()?;
            let record: Record<'_> = found.decode().ok()??;
            f(&record)
        })
    }

    /// ISO 3166 country code of the address's country (else of its registered country).
    pub fn country(&self, ip: &str) -> Option<String> {
        self.first(ip, |r| {
            let iso = |c: Option<&Country<'_>>| c.and_then(|c| c.iso_code).map(str::to_string);
            iso(r.country.as_ref())
                .or_else(|| iso(r.registered_country.as_ref()))
                .or(r.country_code.map(str::to_string))
        })
    }

    /// Autonomous system number announcing the address.
    pub fn asn(&self, ip: &str) -> Option<u32> {
        self.first(ip, |r| r.autonomous_system_number)
    }

    /// Organisation of that autonomous system.
    pub fn org(&self, ip: &str) -> Option<String> {
        self.first(ip, |r| r.autonomous_system_organization.map(str::to_string))
    }
}

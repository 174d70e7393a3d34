-- title: Direct-to-IP URLs
-- severity: medium
-- mitre: T1071.001, T1105
-- tables: proxy
-- enrich: address
-- description: Requests whose URL names an IP address instead of a host name, per user and
--   address: malware and hand-typed staging servers skip DNS. Internal addresses are left out.
--   Scored by rarity (one over the clients that reached the address anywhere in the lake: an
--   address half the office uses is a service), times the payload (1 for a POST or PUT or a
--   program or archive fetched, 0.6 otherwise), times volume (requests / 3, at most 1).
-- param: internal = '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.|::1$|f[cd]|fe80:)'  # regex of addresses not to report
-- param: payload = '(?i)\.(exe|dll|scr|ps1|bat|vbs|js|hta|msi|zip|7z|rar|iso|bin)(\?|$)'  # regex of URL paths that fetch a program or archive
-- param: min_score = 0.5  # lowest score that is a hit
WITH d AS (
  SELECT coalesce(username, client_ip) AS who, host AS address, count(*) AS requests,
         array_to_string(array_sort(array_agg(DISTINCT method)), ' ') AS methods,
         bool_or(method IN ('POST', 'PUT') OR coalesce(path, '') ~ ${payload}) AS payload,
         min(url) AS sample_url, min(ts) AS first_ts, max(ts) AS last_ts
  FROM proxy_unique
  WHERE (host ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' OR host LIKE '%:%')
    AND NOT host ~ ${internal}
  GROUP BY 1, 2
),
prevalence AS (
  SELECT host AS address, count(DISTINCT client_ip) AS clients
  FROM proxy_history WHERE host IN (SELECT address FROM d)
  GROUP BY 1
)
SELECT
  d.who,
  d.address,
  round(1.0 / p.clients * CASE WHEN d.payload THEN 1.0 ELSE 0.6 END * least(1.0, d.requests / 3.0), 3) AS score,
  d.requests || ' request(s) (' || d.methods || ')'
    || CASE WHEN d.payload THEN ', fetching or sending a file' ELSE '' END
    || '; ' || p.clients || ' client(s) in the lake reach this address' AS why,
  d.requests,
  d.methods,
  d.sample_url,
  local_ts(d.first_ts) AS first_seen,
  local_ts(d.last_ts) AS last_seen
FROM d JOIN prevalence p ON p.address = d.address
ORDER BY score DESC, d.requests DESC, d.who, d.address

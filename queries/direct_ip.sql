-- title: Direct-to-IP URLs
-- severity: medium
-- mitre: T1071.001, T1105
-- tables: proxy
-- description: Requests whose URL names an IP address instead of a host name, per user and
--   address: malware and hand-typed staging servers skip DNS. Internal addresses are left out.
-- param: internal = '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.|::1$|f[cd]|fe80:)'  # regex of addresses not to report
SELECT
  coalesce(username, client_ip) AS who,
  host AS address,
  count(*) AS requests,
  array_to_string(array_sort(array_agg(DISTINCT method)), ' ') AS methods,
  min(url) AS sample_url,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM proxy
WHERE (host ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' OR host LIKE '%:%')
  AND NOT host ~ ${internal}
GROUP BY 1, 2
ORDER BY requests DESC, who, address

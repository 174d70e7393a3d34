-- title: Large uploads
-- severity: high
-- mitre: T1567.002, T1048
-- tables: proxy
-- description: POST and PUT bytes per user (or client, when no user) and registrable domain per
--   local day over a threshold, and single requests over a size; with the domain's i-FILTER
--   categories where known (online storage, webmail). Formats that do not log request sizes
--   (Squid native, common, combined) are named in a note instead of passing silently.
-- param: threshold_bytes = 1073741824  # bytes per user, domain and day
-- param: single_request_bytes = 104857600  # bytes in one request
WITH up AS (
  SELECT coalesce(username, client_ip) AS who, reg_domain(host) AS domain, date, ts, request_bytes
  FROM proxy
  WHERE method IN ('POST', 'PUT') AND request_bytes IS NOT NULL
),
daily AS (
  SELECT who, domain, date AS day, 'day total' AS kind, sum(request_bytes) AS bytes, count(*) AS requests,
         min(ts) AS first_ts, max(ts) AS last_ts
  FROM up GROUP BY who, domain, date
  HAVING sum(request_bytes) > ${threshold_bytes}
),
single AS (
  SELECT who, domain, date AS day, 'single request' AS kind, request_bytes AS bytes, 1 AS requests,
         ts AS first_ts, ts AS last_ts
  FROM up WHERE request_bytes > ${single_request_bytes}
),
category AS (
  SELECT domain, string_agg(DISTINCT name_en, ', ' ORDER BY name_en) AS categories
  FROM (SELECT reg_domain(host) AS domain, unnest(categories) AS id FROM proxy WHERE categories IS NOT NULL) c
  JOIN ifilter_categories USING (id)
  GROUP BY domain
)
SELECT h.who, h.domain, h.day, h.kind, h.bytes, h.requests, c.categories,
       local_ts(h.first_ts) AS first_seen, local_ts(h.last_ts) AS last_seen
FROM (SELECT * FROM daily UNION ALL SELECT * FROM single) h
LEFT JOIN category c ON c.domain = h.domain
ORDER BY h.kind, h.bytes DESC, h.who, h.domain, first_seen
-- @notes
SELECT 'request sizes not logged for ' || count(*) || ' rows from ' || source_format AS note
FROM proxy WHERE request_bytes IS NULL
GROUP BY source_format
ORDER BY source_format

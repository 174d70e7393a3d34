-- title: Large uploads
-- severity: high
-- mitre: T1567.002, T1048
-- tables: proxy
-- description: POST and PUT bytes per person and registrable domain per local day, with the
--   day's largest request and the domain's i-FILTER categories where known (online storage,
--   webmail). Candidates pass threshold_bytes in the day or single_request_bytes in one request.
--   Scored by size (the day's bytes over twice the threshold, or half the largest request over
--   four times the single size, at most 1), times novelty against the person's own earlier days:
--   1 - 0.7 x (their largest earlier day's uploads / this day's, at most 1), or 0.75 with no
--   earlier day in the lake. Requests logged by two proxies count once (proxy_unique); machines
--   (proxy_actors) are left out and counted in a note. Formats that do not log request sizes
--   (Squid native, common, combined) are named in a note instead of passing silently.
-- param: threshold_bytes = 1073741824  # bytes per person, domain and day
-- param: single_request_bytes = 104857600  # bytes in one request
-- param: baseline_days = 0  # earlier days to compare with (0: all of the lake before the day)
-- param: min_score = 0.5  # lowest score that is a hit
WITH up AS (
  SELECT coalesce(username, client_ip) AS who, reg_domain(host) AS domain, date, ts, request_bytes
  FROM proxy_unique
  WHERE method IN ('POST', 'PUT') AND request_bytes IS NOT NULL
),
daily AS (
  SELECT who, domain, date AS day, CAST(CAST(date AS DATE) AS INT) AS n, sum(request_bytes) AS bytes,
         count(*) AS requests, max(request_bytes) AS largest, min(ts) AS first_ts, max(ts) AS last_ts
  FROM up GROUP BY who, domain, date
  HAVING sum(request_bytes) > ${threshold_bytes} OR max(request_bytes) > ${single_request_bytes}
),
candidates AS (
  SELECT * FROM daily WHERE who NOT IN (SELECT who FROM proxy_actors WHERE machine)
),
-- Each candidate's uploads on earlier days, every domain together, from the whole lake.
history AS (
  SELECT coalesce(username, client_ip) AS who, date, CAST(CAST(date AS DATE) AS INT) AS n,
         sum(request_bytes) AS bytes
  FROM proxy_history
  WHERE method IN ('POST', 'PUT') AND request_bytes IS NOT NULL
    AND coalesce(username, client_ip) IN (SELECT who FROM candidates)
  GROUP BY 1, 2
),
base AS (
  SELECT c.who, c.domain, c.day, count(h.date) AS prior_days, max(h.bytes) AS prior_max
  FROM candidates c LEFT JOIN history h
    ON h.who = c.who AND h.n < c.n AND (${baseline_days} = 0 OR h.n >= c.n - ${baseline_days})
  GROUP BY 1, 2, 3
),
category AS (
  SELECT domain, string_agg(DISTINCT name_en, ', ' ORDER BY name_en) AS categories
  FROM (SELECT reg_domain(host) AS domain, unnest(categories) AS id FROM proxy
        WHERE categories IS NOT NULL AND reg_domain(host) IN (SELECT domain FROM candidates)) c
  JOIN ifilter_categories USING (id)
  GROUP BY domain
),
scored AS (
  SELECT c.*, b.prior_days, b.prior_max,
    greatest(least(1.0, c.bytes / (2.0 * ${threshold_bytes})),
             0.5 * least(1.0, c.largest / (4.0 * ${single_request_bytes}))) AS size,
    CASE WHEN b.prior_days = 0 THEN 0.75
         ELSE 1 - 0.7 * least(1.0, coalesce(b.prior_max, 0) / CAST(c.bytes AS DOUBLE)) END AS novelty
  FROM candidates c JOIN base b ON b.who = c.who AND b.domain = c.domain AND b.day = c.day
)
SELECT s.who, s.domain, s.day,
       round(s.size * s.novelty, 3) AS score,
       round(s.bytes / 1048576.0, 1) || ' MiB in ' || s.requests || ' request(s), largest '
         || round(s.largest / 1048576.0, 1) || ' MiB; '
         || CASE WHEN s.prior_days = 0 THEN 'no earlier uploads in the lake to compare with'
                 ELSE 'largest earlier day ' || round(coalesce(s.prior_max, 0) / 1048576.0, 1)
                      || ' MiB over ' || s.prior_days || ' earlier upload day(s)' END AS why,
       s.bytes, s.requests, s.largest, c.categories,
       local_ts(s.first_ts) AS first_seen, local_ts(s.last_ts) AS last_seen
FROM scored s LEFT JOIN category c ON c.domain = s.domain
ORDER BY score DESC, s.bytes DESC, s.who, s.domain, s.day
-- @notes
SELECT 'request sizes not logged for ' || count(*) || ' rows from ' || source_format AS note
FROM proxy WHERE request_bytes IS NULL
GROUP BY source_format
UNION ALL
SELECT count(*) || ' machine(s) active about round the clock left out: '
       || array_to_string(array_sort(array_agg(who)), ' ') AS note
FROM proxy_actors WHERE machine AND who IN (
  SELECT coalesce(username, client_ip) FROM proxy WHERE method IN ('POST', 'PUT') AND request_bytes > ${single_request_bytes})
HAVING count(*) > 0
ORDER BY note

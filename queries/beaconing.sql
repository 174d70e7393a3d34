-- title: Beaconing
-- severity: high
-- mitre: T1071.001, T1573
-- tables: proxy
-- description: Client and host pairs whose connections come at a steady interval with steady
--   sizes, as implants polling a command server do. Scored 0 to 1 in the manner of RITA: the
--   timing part averages the symmetry of the intervals (1 - |Bowley skew|), their spread (median
--   absolute deviation against a quarter of the period) and how well the period fills the
--   series' span; the size part averages the symmetry and spread of the sizes. The score is
--   the mean of the two, times the duration (half, plus half the series' span over full_hours,
--   so a page's keep-alive over ten minutes is not an implant), divided by the prevalence of the
--   host's domain (one plus the other clients that reached it anywhere in the lake, over 5: an update
--   server every machine polls is a service). The period is the median interval in seconds.
--   Requests are counted once however many proxies logged them (proxy_unique).
-- param: min_connections = 20  # fewest connections in a series
-- param: full_hours = 2.0  # a series this long or longer gets its full score
-- param: min_score = 0.8  # lowest score that is a hit
WITH c AS (
  SELECT client_ip, host, ts,
         CAST(coalesce(response_bytes, 0) + coalesce(request_bytes, 0) AS DOUBLE) AS size
  FROM proxy_unique
  WHERE host IS NOT NULL AND client_ip IS NOT NULL
),
-- One sort by series serves every step: the gaps (lag), the medians each row is compared with
-- for the median absolute deviation, and the final aggregate. Joining per-series figures back
-- to the rows would hash millions of string pairs; short series are dropped only at the end
-- (HAVING), as filtering millions of rows first costs more than the few rows it saves.
-- median() is percentile_cont(0.5), in a form that can also be a window function.
d AS (
  SELECT client_ip, host, ts, size,
         date_part('epoch', ts)
           - date_part('epoch', lag(ts) OVER (PARTITION BY client_ip, host ORDER BY ts)) AS gap
  FROM c
),
e AS (
  SELECT client_ip, host, ts, size, gap,
         median(gap) OVER (PARTITION BY client_ip, host) AS g2,
         median(size) OVER (PARTITION BY client_ip, host) AS s2
  FROM d
),
q AS (
  SELECT client_ip, host, count(*) AS connections, min(ts) AS first_ts, max(ts) AS last_ts,
         percentile_cont(0.25) WITHIN GROUP (ORDER BY gap) AS g1, max(g2) AS g2,
         percentile_cont(0.75) WITHIN GROUP (ORDER BY gap) AS g3,
         percentile_cont(0.25) WITHIN GROUP (ORDER BY size) AS s1, max(s2) AS s2,
         percentile_cont(0.75) WITHIN GROUP (ORDER BY size) AS s3,
         median(abs(gap - g2)) AS gap_madm,
         median(abs(size - s2)) AS size_madm
  FROM e GROUP BY 1, 2
  HAVING count(*) >= ${min_connections}
),
parts AS (
  SELECT q.*,
    date_part('epoch', q.last_ts) - date_part('epoch', q.first_ts) AS span,
    -- Bowley skew is taken as 0 when a quartile meets the median (a perfectly even series).
    1 - abs(CASE WHEN q.g3 = q.g1 OR q.g2 = q.g1 OR q.g2 = q.g3 THEN 0
                 ELSE (q.g3 + q.g1 - 2 * q.g2) / (q.g3 - q.g1) END) AS gap_symmetry,
    CASE WHEN q.g2 > 0 THEN greatest(0, 1 - q.gap_madm / (0.25 * q.g2)) ELSE 0 END AS gap_steadiness,
    1 - abs(CASE WHEN q.s3 = q.s1 OR q.s2 = q.s1 OR q.s2 = q.s3 THEN 0
                 ELSE (q.s3 + q.s1 - 2 * q.s2) / (q.s3 - q.s1) END) AS size_symmetry,
    greatest(0, 1 - q.size_madm / greatest(0.25 * q.s2, 32)) AS size_steadiness
  FROM q
),
scored AS (
  SELECT *,
    CASE WHEN span > 0 THEN least(1, (connections - 1) * g2 / span) ELSE 0 END AS coverage,
    0.5 + 0.5 * least(1.0, span / (${full_hours} * 3600.0)) AS duration
  FROM parts
),
-- Clients per registrable domain over the whole lake, for the candidate series' domains only.
prevalence AS (
  SELECT reg_domain(host) AS domain, count(DISTINCT client_ip) AS clients
  FROM proxy_history WHERE reg_domain(host) IN (SELECT reg_domain(host) FROM scored)
  GROUP BY 1
),
final AS (
  SELECT s.*, p.clients,
    (gap_symmetry + gap_steadiness + coverage) / 3 AS timing,
    (size_symmetry + size_steadiness) / 2 AS sizes,
    1.0 / (1 + (coalesce(p.clients, 1) - 1) / 5.0) AS rarity
  FROM scored s LEFT JOIN prevalence p ON p.domain = reg_domain(s.host)
)
SELECT
  client_ip,
  host,
  round((timing + sizes) / 2 * duration * rarity, 3) AS score,
  'every ' || round(g2, 1) || ' s (median) for ' || round(span / 3600.0, 1) || ' h, '
    || connections || ' requests; timing ' || round(timing, 2) || ', sizes ' || round(sizes, 2)
    || '; ' || coalesce(clients, 1) || ' client(s) in the lake reach this domain' AS why,
  round(g2, 1) AS period_seconds,
  connections,
  round(timing, 3) AS timing_score,
  round(sizes, 3) AS size_score,
  local_ts(first_ts) AS first_seen,
  local_ts(last_ts) AS last_seen
FROM final
ORDER BY score DESC, connections DESC, client_ip, host

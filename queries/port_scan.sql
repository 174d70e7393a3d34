-- title: Port scans
-- severity: high
-- mitre: T1046
-- tables: firewall
-- enrich: src_ip, target
-- description: One source probing within a short window (fixed windows from midnight UTC):
--   vertical, one target on many ports, or horizontal, one port on many internal targets
--   (reaching many internet hosts on one port is a browser's ordinary fan-out and does not
--   count). A refused or dropped port or target weighs 1, an allowed one 0.3; the score is that
--   weight over twice min_ports (vertical) or min_hosts (horizontal), at most 1, times one minus
--   0.8 x the share of the window's target and port pairs the source had already reached on
--   earlier days in the lake (a monitoring server's daily sweep is routine). One row per source
--   and window: its stronger kind.
-- param: window_minutes = 10  # length of each window
-- param: min_ports = 20  # distinct ports on one target that make a vertical scan
-- param: min_hosts = 30  # or distinct internal targets on one port, a horizontal one
-- param: internal = '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.|f[cd]|fe80:)'  # regex of internal addresses
-- param: min_score = 0.5  # lowest score that is a hit
WITH f AS (
  SELECT src_ip, dst_ip, dst_port, action, ts, date,
         CAST(floor(date_part('epoch', ts) / (${window_minutes} * 60)) AS BIGINT) AS w
  FROM firewall
  WHERE dst_port IS NOT NULL AND dst_ip IS NOT NULL
),
-- A window's ordinary traffic is millions of (source, target, port) triples seen once; only a
-- target reached at least min_ports / 2 times (vertical) or a port reached on at least
-- min_hosts / 2 internal targets (horizontal) can reach either threshold, so only those rows
-- are grouped further (each kept group is kept whole: the gates depend on its keys only).
vgate AS (
  SELECT src_ip, w, dst_ip FROM f GROUP BY 1, 2, 3 HAVING count(*) >= ${min_ports} / 2
),
hgate AS (
  SELECT src_ip, w, dst_port FROM f WHERE dst_ip ~ ${internal}
  GROUP BY 1, 2, 3 HAVING count(*) >= ${min_hosts} / 2
),
g AS (
  SELECT f.* FROM f JOIN vgate v ON v.src_ip = f.src_ip AND v.w = f.w AND v.dst_ip = f.dst_ip
  UNION ALL
  SELECT f.* FROM f JOIN hgate h ON h.src_ip = f.src_ip AND h.w = f.w AND h.dst_port = f.dst_port
  WHERE f.dst_ip ~ ${internal}
    AND NOT EXISTS (SELECT 1 FROM vgate v WHERE v.src_ip = f.src_ip AND v.w = f.w AND v.dst_ip = f.dst_ip)
),
-- One row per source, window, target and port: distinct counts come from grouping twice, not
-- count(DISTINCT ...), which keeps a hash set per group.
pp AS (
  SELECT src_ip, w, dst_ip, dst_port, bool_or(dst_ip ~ ${internal}) AS internal,
         max(CASE WHEN action = 'DROP' THEN 1 ELSE 0 END) AS refused, count(*) AS attempts,
         min(ts) AS first_ts, max(ts) AS last_ts, min(date) AS day
  FROM g GROUP BY src_ip, w, dst_ip, dst_port
),
vertical AS (
  SELECT src_ip, w, 'vertical' AS kind, dst_ip AS target, count(*) AS n, sum(refused) AS refused,
         sum(attempts) AS attempts, min(first_ts) AS first_ts, max(last_ts) AS last_ts, min(day) AS day,
         min(dst_port) AS lo, max(dst_port) AS hi,
         least(1.0, (sum(refused) + 0.3 * (count(*) - sum(refused))) / (2.0 * ${min_ports})) AS strength
  FROM pp GROUP BY src_ip, w, dst_ip
  HAVING count(*) >= ${min_ports} / 2
),
horizontal AS (
  SELECT src_ip, w, 'horizontal' AS kind, CAST(dst_port AS VARCHAR) AS target, count(*) AS n,
         sum(refused) AS refused, sum(attempts) AS attempts, min(first_ts) AS first_ts,
         max(last_ts) AS last_ts, min(day) AS day, min(dst_port) AS lo, max(dst_port) AS hi,
         least(1.0, (sum(refused) + 0.3 * (count(*) - sum(refused))) / (2.0 * ${min_hosts})) AS strength
  FROM pp WHERE internal GROUP BY src_ip, w, dst_port
  HAVING count(*) >= ${min_hosts} / 2
),
cands AS (SELECT * FROM vertical UNION ALL SELECT * FROM horizontal),
-- When each candidate source first reached each target and port, over the whole lake.
known AS (
  SELECT src_ip, dst_ip, dst_port, min(CAST(CAST(date AS DATE) AS INT)) AS first_n
  FROM firewall_history WHERE src_ip IN (SELECT src_ip FROM cands) AND dst_ip IN (SELECT dst_ip FROM pp)
    AND dst_port IN (SELECT dst_port FROM pp)
  GROUP BY 1, 2, 3
),
routine AS (
  SELECT c.src_ip, c.w, c.kind, c.target,
         avg(CASE WHEN k.first_n < CAST(CAST(c.day AS DATE) AS INT) THEN 1.0 ELSE 0.0 END) AS known_share
  FROM cands c
  JOIN pp ON pp.src_ip = c.src_ip AND pp.w = c.w
    AND ((c.kind = 'vertical' AND pp.dst_ip = c.target)
      OR (c.kind = 'horizontal' AND pp.internal AND CAST(pp.dst_port AS VARCHAR) = c.target))
  JOIN known k ON k.src_ip = pp.src_ip AND k.dst_ip = pp.dst_ip AND k.dst_port = pp.dst_port
  GROUP BY 1, 2, 3, 4
),
scored AS (
  SELECT c.*, r.known_share, c.strength * (1 - 0.8 * r.known_share) AS s,
         row_number() OVER (PARTITION BY c.src_ip, c.w ORDER BY c.strength * (1 - 0.8 * r.known_share) DESC, c.kind) AS rank
  FROM cands c JOIN routine r ON r.src_ip = c.src_ip AND r.w = c.w AND r.kind = c.kind AND r.target = c.target
)
SELECT
  src_ip,
  round(s, 3) AS score,
  CASE WHEN kind = 'vertical'
       THEN 'vertical scan of ' || target || ': ' || n || ' ports (' || lo || '-' || hi || ')'
       ELSE 'horizontal scan of port ' || target || ': ' || n || ' internal hosts' END
    || ', ' || refused || ' refused or dropped, in ' || ${window_minutes} || ' min; '
    || round(100 * known_share) || ' % of these reached on earlier days' AS why,
  kind,
  target,
  n AS targets,
  refused,
  attempts,
  local_ts(first_ts) AS first_seen,
  local_ts(last_ts) AS last_seen
FROM scored
WHERE rank = 1
ORDER BY score DESC, src_ip, first_seen

-- title: Firewall egress on unusual ports
-- severity: medium
-- mitre: T1571
-- tables: firewall
-- enrich: dst_ip
-- description: Outbound connections the firewall allowed to addresses outside the internal
--   ranges on ports not in the allow list, per source, destination and port. Scored by rarity
--   (one plus the other sources using that port outward anywhere in the lake, over 2: a port
--   much of the office uses, a conferencing service's, is not odd here), times novelty (one over
--   one plus the earlier days this source used the port outward), times volume (connections / 5,
--   at most 1).
-- param: allowed_ports = 20, 21, 22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995  # egress ports that are normal here
-- param: internal = '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.|22[4-9]\.|23[0-9]\.|255\.|0\.|::1$|f[cdf]|fe80:)'  # regex of addresses that are not egress
-- param: baseline_days = 0  # earlier days to compare with (0: all of the lake before the day)
-- param: min_score = 0.5  # lowest score that is a hit
WITH odd AS (
  SELECT src_ip, dst_ip, dst_port, protocol, count(*) AS connections, sum(size) AS bytes,
         min(ts) AS first_ts, max(ts) AS last_ts, min(date) AS first_day
  FROM firewall
  WHERE action = 'ALLOW' AND coalesce(path, 'SEND') = 'SEND'
    AND protocol IN ('TCP', 'UDP') AND dst_port IS NOT NULL
    AND dst_port NOT IN (${allowed_ports})
    AND NOT dst_ip ~ ${internal}
  GROUP BY 1, 2, 3, 4
),
-- Who used the candidate ports outward, and on which days, anywhere in the lake.
usage AS (
  SELECT src_ip, dst_port, CAST(CAST(date AS DATE) AS INT) AS n
  FROM firewall_history
  WHERE action = 'ALLOW' AND coalesce(path, 'SEND') = 'SEND'
    AND dst_port IN (SELECT dst_port FROM odd) AND NOT dst_ip ~ ${internal}
  GROUP BY 1, 2, 3
),
spread AS (SELECT dst_port, count(DISTINCT src_ip) AS sources FROM usage GROUP BY 1),
base AS (
  SELECT o.src_ip, o.dst_ip, o.dst_port, o.protocol, count(u.n) AS prior_days
  FROM odd o LEFT JOIN usage u ON u.src_ip = o.src_ip AND u.dst_port = o.dst_port
    AND u.n < CAST(CAST(o.first_day AS DATE) AS INT)
    AND (${baseline_days} = 0 OR u.n >= CAST(CAST(o.first_day AS DATE) AS INT) - ${baseline_days})
  GROUP BY 1, 2, 3, 4
)
SELECT
  o.src_ip,
  o.dst_ip,
  o.dst_port,
  o.protocol,
  round(1.0 / (1 + (sp.sources - 1) / 2.0) / (1 + b.prior_days) * least(1.0, o.connections / 5.0), 3) AS score,
  o.connections || ' connection(s) out on ' || o.protocol || ' ' || o.dst_port || '; '
    || sp.sources || ' source(s) in the lake use this port outward; this source on '
    || b.prior_days || ' earlier day(s)' AS why,
  o.connections,
  o.bytes,
  local_ts(o.first_ts) AS first_seen,
  local_ts(o.last_ts) AS last_seen
FROM odd o
JOIN spread sp ON sp.dst_port = o.dst_port
JOIN base b ON b.src_ip = o.src_ip AND b.dst_ip = o.dst_ip AND b.dst_port = o.dst_port AND b.protocol = o.protocol
ORDER BY score DESC, o.connections DESC, o.src_ip, o.dst_ip, o.dst_port

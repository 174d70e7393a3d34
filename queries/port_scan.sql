-- title: Port scans
-- severity: high
-- mitre: T1046
-- tables: firewall
-- description: One source touching many destination ports or many hosts within a short window
--   (fixed windows from midnight UTC), allowed or dropped, per source and window.
-- param: window_minutes = 10  # length of each window
-- param: min_ports = 20  # distinct destination ports in a window that make a scan
-- param: min_hosts = 30  # or distinct destination hosts
WITH f AS (
  SELECT src_ip, dst_ip, dst_port, action, ts,
         CAST(floor(date_part('epoch', ts) / (${window_minutes} * 60)) AS BIGINT) AS w
  FROM firewall
  WHERE dst_port IS NOT NULL
),
-- Distinct ports and hosts are counted by grouping twice (per port, then per window; per host,
-- then per window), not with count(DISTINCT ...): DataFusion keeps a hash set per group for
-- that, which over every source's windows is slow and takes gigabytes. The window number is an
-- integer, a cheaper key than a float.
per_port AS (
  SELECT src_ip, w, count(*) AS attempts, sum(CASE WHEN action = 'DROP' THEN 1 ELSE 0 END) AS dropped,
         min(ts) AS first_ts, max(ts) AS last_ts
  FROM f GROUP BY src_ip, w, dst_port
),
windows AS (
  SELECT src_ip, w, count(*) AS ports, sum(attempts) AS attempts, sum(dropped) AS dropped,
         min(first_ts) AS first_ts, max(last_ts) AS last_ts
  FROM per_port GROUP BY src_ip, w
),
hosts AS (
  SELECT src_ip, w, count(*) AS hosts
  FROM (SELECT src_ip, w FROM f GROUP BY src_ip, w, dst_ip) h
  GROUP BY src_ip, w
)
SELECT
  windows.src_ip,
  ports,
  hosts,
  attempts,
  dropped,
  local_ts(first_ts) AS first_seen,
  local_ts(last_ts) AS last_seen
FROM windows JOIN hosts ON hosts.src_ip = windows.src_ip AND hosts.w = windows.w
WHERE ports >= ${min_ports} OR hosts >= ${min_hosts}
ORDER BY ports DESC, hosts DESC, src_ip, first_seen

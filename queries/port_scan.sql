-- title: Port scans
-- severity: high
-- mitre: T1046
-- tables: firewall
-- description: One source touching many destination ports or many hosts within a short window
--   (fixed windows from midnight UTC), allowed or dropped, per source and window.
-- param: window_minutes = 10  # length of each window
-- param: min_ports = 20  # distinct destination ports in a window that make a scan
-- param: min_hosts = 30  # or distinct destination hosts
SELECT
  src_ip,
  count(DISTINCT dst_port) AS ports,
  count(DISTINCT dst_ip) AS hosts,
  count(*) AS attempts,
  sum(CASE WHEN action = 'DROP' THEN 1 ELSE 0 END) AS dropped,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM firewall
WHERE dst_port IS NOT NULL
GROUP BY src_ip, floor(date_part('epoch', ts) / (${window_minutes} * 60))
HAVING count(DISTINCT dst_port) >= ${min_ports} OR count(DISTINCT dst_ip) >= ${min_hosts}
ORDER BY ports DESC, hosts DESC, src_ip, first_seen

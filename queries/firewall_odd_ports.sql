-- title: Firewall egress on unusual ports
-- severity: medium
-- mitre: T1571
-- tables: firewall
-- description: Outbound connections the firewall allowed to addresses outside the internal
--   ranges on ports not in the allow list, per source, destination and port.
-- param: allowed_ports = 20, 21, 22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 993, 995  # egress ports that are normal here
-- param: internal = '^(10\.|127\.|192\.168\.|172\.(1[6-9]|2[0-9]|3[01])\.|169\.254\.|22[4-9]\.|23[0-9]\.|255\.|0\.|::1$|f[cdf]|fe80:)'  # regex of addresses that are not egress
SELECT
  src_ip,
  dst_ip,
  dst_port,
  protocol,
  count(*) AS connections,
  sum(size) AS bytes,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM firewall
WHERE action = 'ALLOW' AND coalesce(path, 'SEND') = 'SEND'
  AND protocol IN ('TCP', 'UDP') AND dst_port IS NOT NULL
  AND dst_port NOT IN (${allowed_ports})
  AND NOT dst_ip ~ ${internal}
GROUP BY 1, 2, 3, 4
ORDER BY connections DESC, src_ip, dst_ip, dst_port

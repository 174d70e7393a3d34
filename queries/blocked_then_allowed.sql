-- title: Blocked, then allowed
-- severity: medium
-- mitre: T1090, T1562
-- tables: proxy
-- description: A request the filter blocked (i-FILTER action 'block', or Squid TCP_DENIED)
--   followed within a window by a successful one from the same user to the same host: a
--   category changed, an exception was granted, or the filter was got round.
-- param: within_minutes = 60  # success must follow a block within this many minutes
WITH r AS (
  SELECT coalesce(username, client_ip) AS who, host, ts, date_part('epoch', ts) AS t,
         (action = 'block' OR cache_result LIKE 'TCP_DENIED%') AS blocked,
         status BETWEEN 200 AND 399 AND coalesce(action, '') <> 'block'
           AND coalesce(cache_result, '') NOT LIKE 'TCP_DENIED%' AS ok
  FROM proxy
  WHERE host IS NOT NULL
),
b AS (SELECT who, host, ts, t FROM r WHERE blocked),
a AS (SELECT who, host, ts, t FROM r WHERE ok)
SELECT
  b.who,
  b.host,
  count(DISTINCT b.ts) AS blocks,
  count(DISTINCT a.ts) AS allowed_after,
  local_ts(min(b.ts)) AS first_seen,
  local_ts(min(a.ts)) AS first_allowed,
  local_ts(max(a.ts)) AS last_seen
FROM b JOIN a ON a.who = b.who AND a.host = b.host
  AND a.t > b.t AND a.t <= b.t + ${within_minutes} * 60
GROUP BY 1, 2
ORDER BY blocks DESC, allowed_after DESC, who, host

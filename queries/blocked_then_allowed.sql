-- title: Blocked, then allowed
-- severity: medium
-- mitre: T1090, T1562
-- tables: proxy
-- description: A request the filter blocked (i-FILTER action 'block', or Squid TCP_DENIED)
--   followed within a window by a successful one from the same user to the same host: a
--   category changed, an exception was granted, or the filter was got round. Scored by how
--   blocked the host is for everyone else in the lake (the share of other users' requests to it
--   that were blocked; 1 when nobody else went there: a host that is mostly allowed, with a few
--   pages blocked, is not being got round), times the allowed requests after a block / 3, at
--   most 1.
-- param: within_minutes = 60  # success must follow a block within this many minutes
-- param: min_score = 0.5  # lowest score that is a hit
WITH r AS (
  SELECT coalesce(username, client_ip) AS who, host, ts, date_part('epoch', ts) AS t,
         (action = 'block' OR cache_result LIKE 'TCP_DENIED%') AS blocked,
         status BETWEEN 200 AND 399 AND coalesce(action, '') <> 'block'
           AND coalesce(cache_result, '') NOT LIKE 'TCP_DENIED%' AS ok
  FROM proxy_unique
  WHERE host IS NOT NULL
),
b AS (SELECT who, host, ts, t FROM r WHERE blocked),
-- Allowed requests only of users and hosts that had a block: the pairs join stays small.
a AS (SELECT who, host, ts, t FROM r WHERE ok AND who IN (SELECT who FROM b) AND host IN (SELECT host FROM b)),
pairs AS (
  SELECT b.who, b.host, count(DISTINCT b.ts) AS blocks, count(DISTINCT a.ts) AS allowed_after,
         min(b.ts) AS first_ts, min(a.ts) AS first_allowed_ts, max(a.ts) AS last_ts
  FROM b JOIN a ON a.who = b.who AND a.host = b.host
    AND a.t > b.t AND a.t <= b.t + ${within_minutes} * 60
  GROUP BY 1, 2
),
-- Requests to the candidate hosts anywhere in the lake, per host and user; other users' share
-- is the host's total less the user's own (joining each pair to every request to its host
-- would make a row per pair and request: a hundred million for a popular host).
hh AS (
  SELECT host, coalesce(username, client_ip) AS who, count(*) AS requests,
         sum(CASE WHEN action = 'block' OR cache_result LIKE 'TCP_DENIED%' THEN 1 ELSE 0 END) AS blocked
  FROM proxy_history
  WHERE host IN (SELECT host FROM pairs) AND coalesce(username, client_ip) IS NOT NULL
  GROUP BY 1, 2
),
ht AS (SELECT host, sum(requests) AS requests, sum(blocked) AS blocked FROM hh GROUP BY 1),
others AS (
  SELECT p.who, p.host,
         coalesce(t.requests, 0) - coalesce(own.requests, 0) AS requests,
         coalesce(t.blocked, 0) - coalesce(own.blocked, 0) AS blocked
  FROM pairs p
  LEFT JOIN ht t ON t.host = p.host
  LEFT JOIN hh own ON own.host = p.host AND own.who = p.who
)
SELECT
  p.who,
  p.host,
  round(CASE WHEN o.requests = 0 THEN 1.0 ELSE o.blocked / CAST(o.requests AS DOUBLE) END
        * least(1.0, p.allowed_after / 3.0), 3) AS score,
  p.blocks || ' block(s), then ' || p.allowed_after || ' allowed within ' || ${within_minutes}
    || ' min; ' || CASE WHEN o.requests = 0 THEN 'nobody else in the lake requested this host'
                        ELSE o.blocked || ' of ' || o.requests || ' requests by others were blocked' END AS why,
  p.blocks,
  p.allowed_after,
  local_ts(p.first_ts) AS first_seen,
  local_ts(p.first_allowed_ts) AS first_allowed,
  local_ts(p.last_ts) AS last_seen
FROM pairs p JOIN others o ON o.who = p.who AND o.host = p.host
ORDER BY score DESC, p.blocks DESC, p.who, p.host

-- title: Rare domains
-- severity: low
-- mitre: T1071.001, T1568
-- tables: proxy
-- description: Registrable domains that very few clients use in the whole lake, newest first: a
--   domain one machine talks to and nobody else does is worth a look. IP addresses are left to
--   direct_ip. Scored by rarity (one over the clients in the lake), times newness (the days the
--   lake holds before the domain's first request, over that plus one: on the lake's first day
--   everything is new), times burst (one over the days it was used: a site someone reads every
--   day is a habit), times volume (requests / 5, at most 1; requests logged twice count once).
--   Domains on a popularity or allow list (--allow FILE) are left out.
-- param: max_clients = 1  # most distinct clients in the lake for a domain to be a candidate
-- param: min_score = 0.5  # lowest score that is a hit
-- Hosts, clients and days first: about 2 % of the rows here, so reg_domain and the address test run
-- on those, and the distinct counts below hold small sets.
WITH hcd AS (SELECT host, client_ip, date FROM proxy_history WHERE host IS NOT NULL GROUP BY 1, 2, 3),
seen AS (
  SELECT reg_domain(host) AS domain, count(DISTINCT client_ip) AS clients, count(DISTINCT date) AS days,
         min(date) AS first_day
  FROM hcd
  WHERE reg_domain(host) IS NOT NULL
    AND NOT (host ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' OR host LIKE '%:%')
    AND reg_domain(host) NOT IN (SELECT domain FROM allow_domains)
  GROUP BY 1
  HAVING count(DISTINCT client_ip) <= ${max_clients}
),
lake_days AS (SELECT DISTINCT date FROM proxy_hours_history),
before AS (
  SELECT s.domain, count(l.date) AS days_before
  FROM seen s LEFT JOIN lake_days l ON l.date < s.first_day
  GROUP BY 1
),
r AS (
  SELECT reg_domain(host) AS domain, count(*) AS requests,
         array_to_string(array_sort(array_agg(DISTINCT coalesce(username, client_ip))), ' ') AS who,
         min(ts) AS first_ts, max(ts) AS last_ts
  FROM proxy_unique
  WHERE reg_domain(host) IN (SELECT domain FROM seen)
  GROUP BY 1
)
SELECT
  r.domain,
  round(1.0 / s.clients * b.days_before / (b.days_before + 1.0) / s.days * least(1.0, r.requests / 5.0), 3)
    AS score,
  r.requests || ' request(s) from ' || s.clients || ' client(s) in the whole lake, on ' || s.days
    || ' day(s), first on ' || s.first_day || ' after ' || b.days_before || ' day(s) of logs' AS why,
  s.clients,
  r.requests,
  r.who,
  local_ts(r.first_ts) AS first_seen,
  local_ts(r.last_ts) AS last_seen
FROM r JOIN seen s ON s.domain = r.domain JOIN before b ON b.domain = r.domain
ORDER BY score DESC, first_seen DESC, r.domain
-- @notes
SELECT CASE WHEN n = 0 THEN 'no popularity list given (--allow FILE): domains popular worldwide can show as rare'
            ELSE 'domains on the ' || n || '-domain allow list left out' END AS note
FROM (SELECT count(*) AS n FROM allow_domains)

-- title: Job-site browsing
-- severity: low
-- tables: proxy
-- description: Visits to job sites, by i-FILTER category or by the editable list job_sites
--   (lists/job-sites.txt: registrable domains or exact host names), per person and local day.
--   Scored by volume (requests / 20, at most 1) times breadth (half, plus half the job sites
--   visited over 2): one visit is a click on a link, two dozen pages on two sites is a search.
--   The person's earlier days with job-site visits are given for context. Requests logged by
--   two proxies count once (proxy_unique); machines (proxy_actors) are left out.
-- param: category = 50  # i-FILTER category id of job sites
-- param: baseline_days = 0  # earlier days to count visits on (0: all of the lake before the day)
-- param: min_score = 0.5  # lowest score that is a hit
WITH visits AS (
  SELECT coalesce(username, client_ip) AS who, date AS day, CAST(CAST(date AS DATE) AS INT) AS n,
         count(*) AS requests, array_to_string(array_sort(array_agg(DISTINCT reg_domain(host))), ' ') AS domains,
         count(DISTINCT reg_domain(host)) AS sites, min(ts) AS first_ts, max(ts) AS last_ts
  FROM proxy_unique
  WHERE array_has(categories, ${category})
     OR reg_domain(host) IN (SELECT lower(entry) FROM job_sites)
     OR host IN (SELECT lower(entry) FROM job_sites)
  GROUP BY 1, 2
),
people AS (SELECT * FROM visits WHERE who NOT IN (SELECT who FROM proxy_actors WHERE machine)),
earlier AS (
  SELECT coalesce(username, client_ip) AS who, CAST(CAST(date AS DATE) AS INT) AS n
  FROM proxy_history
  WHERE (array_has(categories, ${category})
     OR reg_domain(host) IN (SELECT lower(entry) FROM job_sites)
     OR host IN (SELECT lower(entry) FROM job_sites))
    AND coalesce(username, client_ip) IN (SELECT who FROM people)
  GROUP BY 1, 2
),
base AS (
  SELECT p.who, p.day, count(e.n) AS prior_days
  FROM people p LEFT JOIN earlier e
    ON e.who = p.who AND e.n < p.n AND (${baseline_days} = 0 OR e.n >= p.n - ${baseline_days})
  GROUP BY 1, 2
)
SELECT
  p.who,
  p.day,
  round(least(1.0, p.requests / 20.0) * (0.5 + 0.5 * least(1.0, p.sites / 2.0)), 3) AS score,
  p.requests || ' request(s) to ' || p.sites || ' job site(s), ' || to_char(local_ts(p.first_ts), '%H:%M')
    || '-' || to_char(local_ts(p.last_ts), '%H:%M') || '; job-site visits on ' || b.prior_days
    || ' earlier day(s)' AS why,
  p.requests,
  p.domains,
  local_ts(p.first_ts) AS first_seen,
  local_ts(p.last_ts) AS last_seen
FROM people p JOIN base b ON b.who = p.who AND b.day = p.day
ORDER BY score DESC, p.who, p.day

-- title: Job-site browsing
-- severity: low
-- tables: proxy
-- description: Visits to job sites, by i-FILTER category or by the editable list job_sites
--   (lists/job-sites.txt: registrable domains or exact host names), per user and local day.
-- param: category = 50  # i-FILTER category id of job sites
-- param: min_requests = 1  # fewest requests per user and day to report
SELECT
  coalesce(username, client_ip) AS who,
  date AS day,
  count(*) AS requests,
  array_to_string(array_sort(array_agg(DISTINCT reg_domain(host))), ' ') AS domains,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM proxy
WHERE array_has(categories, ${category})
   OR reg_domain(host) IN (SELECT lower(entry) FROM job_sites)
   OR host IN (SELECT lower(entry) FROM job_sites)
GROUP BY 1, 2
HAVING count(*) >= ${min_requests}
ORDER BY requests DESC, who, day

-- title: Rare domains
-- severity: low
-- mitre: T1071.001, T1568
-- tables: proxy
-- description: Registrable domains that very few clients visited, newest first: a domain one
--   machine talks to and nobody else does is worth a look. IP addresses are left to direct_ip.
--   Domains on a popularity or allow list (--allow FILE) are left out.
-- param: max_clients = 1  # most distinct clients for a domain to count as rare
-- param: min_requests = 3  # fewest requests to the domain (one-off visits are noise)
SELECT
  reg_domain(host) AS domain,
  count(DISTINCT client_ip) AS clients,
  count(*) AS requests,
  array_to_string(array_sort(array_agg(DISTINCT coalesce(username, client_ip))), ' ') AS who,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM proxy
WHERE reg_domain(host) IS NOT NULL
  AND NOT (host ~ '^[0-9]{1,3}(\.[0-9]{1,3}){3}$' OR host LIKE '%:%')
  AND reg_domain(host) NOT IN (SELECT domain FROM allow_domains)
GROUP BY 1
HAVING count(DISTINCT client_ip) <= ${max_clients} AND count(*) >= ${min_requests}
ORDER BY clients, first_seen DESC, domain
-- @notes
SELECT CASE WHEN n = 0 THEN 'no popularity list given (--allow FILE): domains popular worldwide can show as rare'
            ELSE 'domains on the ' || n || '-domain allow list left out' END AS note
FROM (SELECT count(*) AS n FROM allow_domains)

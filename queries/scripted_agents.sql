-- title: Blank and scripted user agents
-- severity: medium
-- mitre: T1071.001, T1059
-- tables: proxy
-- description: Requests with a blank user agent (logged as '-' or empty) or a tool's agent
--   (curl, Wget, python-requests, PowerShell, Go-http-client, ...), per client and agent.
--   Formats that do not log the agent are named in a note.
-- param: tools = '(?i)(^curl/|^wget/|python-requests|python-urllib|aiohttp|httpx|powershell|go-http-client|libwww-perl|^java/|okhttp|winhttp|^httpie|^nmap|masscan|^axios|^node-fetch)'  # regex of tool agents
-- param: min_requests = 1  # fewest requests per client and agent to report
SELECT
  client_ip,
  CASE WHEN user_agent = '' THEN '(blank)' ELSE user_agent END AS agent,
  ua_browser(user_agent) AS parsed_as,
  count(*) AS requests,
  count(DISTINCT host) AS hosts,
  array_to_string(array_sort(array_agg(DISTINCT username)), ' ') AS users,
  local_ts(min(ts)) AS first_seen,
  local_ts(max(ts)) AS last_seen
FROM proxy
WHERE user_agent = '' OR user_agent ~ ${tools}
GROUP BY 1, 2, 3
HAVING count(*) >= ${min_requests}
ORDER BY requests DESC, client_ip, agent
-- @notes
SELECT 'user agents not logged for ' || count(*) || ' rows from ' || source_format AS note
FROM proxy WHERE user_agent IS NULL
GROUP BY source_format
ORDER BY source_format

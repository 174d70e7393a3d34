-- title: Blank and scripted user agents
-- severity: medium
-- mitre: T1071.001, T1059
-- tables: proxy
-- description: Requests with a blank user agent (logged as '-' or empty), a tool's agent
--   (curl, Wget, python-requests, PowerShell, Go-http-client, ...) or one the agent parser
--   classes as an HTTP library or a crawler (an office machine calling itself Googlebot is a
--   script), per client and agent. Scored by kind (a tool or crawler 0.9, blank 0.6), times
--   burst (one over the days in the lake this client used this agent: a job that runs every
--   day is routine), times rarity (one plus the other clients using the agent in the lake,
--   over 3: an agent on every machine is software the office runs), times volume (requests /
--   10, at most 1). Formats that do not log the agent are named in a note. `parsed_as` is what
--   the agent parser (woothee) reads the agent as, browser and OS; the why says when the
--   parser itself classes the agent as a crawler or an HTTP library.
-- param: tools = '(?i)(^curl/|^wget/|python-requests|python-urllib|aiohttp|httpx|powershell|go-http-client|libwww-perl|^java/|okhttp|winhttp|^httpie|^nmap|masscan|^axios|^node-fetch)'  # regex of tool agents
-- param: min_requests = 1  # fewest requests per client and agent to report
-- param: min_score = 0.5  # lowest score that is a hit
WITH s AS (
  SELECT client_ip, user_agent, user_agent = '' AS blank, count(*) AS requests,
         count(DISTINCT host) AS hosts,
         array_to_string(array_sort(array_agg(DISTINCT username)), ' ') AS users,
         min(ts) AS first_ts, max(ts) AS last_ts
  FROM proxy_unique
  WHERE user_agent = '' OR user_agent ~ ${tools}
     OR ua_device(user_agent) = 'crawler' OR ua_browser(user_agent) = 'HTTP Library'
  GROUP BY 1, 2
  HAVING count(*) >= ${min_requests}
),
h AS (
  SELECT client_ip, user_agent, count(DISTINCT date) AS days
  FROM proxy_history WHERE user_agent IN (SELECT user_agent FROM s)
  GROUP BY 1, 2
),
spread AS (SELECT user_agent, count(*) AS clients FROM h GROUP BY 1)
SELECT
  s.client_ip,
  CASE WHEN s.blank THEN '(blank)' ELSE s.user_agent END AS agent,
  ua_name(s.user_agent) AS parsed_as,
  round(CASE WHEN s.blank THEN 0.6 ELSE 0.9 END / h.days / (1 + (sp.clients - 1) / 3.0)
        * least(1.0, s.requests / 10.0), 3) AS score,
  CASE WHEN s.blank THEN 'blank agent' WHEN ua_device(s.user_agent) = 'crawler' THEN 'crawler agent'
       ELSE 'tool agent' END
    || ', ' || s.requests || ' request(s) to '
    || s.hosts || ' host(s); used by this client on ' || h.days || ' day(s) and by ' || sp.clients
    || ' client(s) in the lake'
    || CASE WHEN ua_device(s.user_agent) = 'crawler' THEN '; the agent parser classes it as a crawler'
            WHEN ua_browser(s.user_agent) = 'HTTP Library' THEN '; the agent parser classes it as an HTTP library'
            ELSE '' END AS why,
  s.requests,
  s.hosts,
  s.users,
  local_ts(s.first_ts) AS first_seen,
  local_ts(s.last_ts) AS last_seen
FROM s JOIN h ON h.client_ip = s.client_ip AND h.user_agent = s.user_agent
JOIN spread sp ON sp.user_agent = s.user_agent
ORDER BY score DESC, s.requests DESC, s.client_ip, agent
-- @notes
SELECT 'user agents not logged for ' || count(*) || ' rows from ' || source_format AS note
FROM proxy WHERE user_agent IS NULL
GROUP BY source_format
ORDER BY source_format

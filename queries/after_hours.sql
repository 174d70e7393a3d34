-- title: After-hours access
-- severity: low
-- mitre: T1078
-- tables: proxy
-- description: Activity outside working hours, on weekends and on Japanese public holidays
--   (the editable list jp_holidays), in the lake's time zone; per user and local day.
-- param: work_start_hour = 8  # working day starts at this local hour
-- param: work_end_hour = 20  # and ends at this one (exclusive)
-- param: min_requests = 1  # fewest requests per user and day to report
WITH t AS (
  SELECT coalesce(username, client_ip) AS who, date, ts, local_ts(ts) AS local,
         date_part('hour', local_ts(ts)) AS hour, date_part('dow', local_ts(ts)) AS dow
  FROM proxy
)
SELECT
  t.who,
  t.date AS day,
  CASE WHEN h.name IS NOT NULL THEN 'holiday ' || h.name
       WHEN t.dow IN (0, 6) THEN 'weekend'
       ELSE 'outside hours' END AS why,
  count(*) AS requests,
  min(t.local) AS first_seen,
  max(t.local) AS last_seen
FROM t LEFT JOIN jp_holidays h ON h.date = t.date
WHERE h.name IS NOT NULL OR t.dow IN (0, 6) OR t.hour < ${work_start_hour} OR t.hour >= ${work_end_hour}
GROUP BY 1, 2, 3
HAVING count(*) >= ${min_requests}
ORDER BY requests DESC, who, day

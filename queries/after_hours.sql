-- title: After-hours access
-- severity: low
-- mitre: T1078
-- tables: proxy
-- description: People active outside their own habits: outside working hours, on weekends and on
--   Japanese public holidays (the editable list jp_holidays), per person and local day, scored
--   against that person's earlier days in the lake. An hour's weight is its depth (night 23:00
--   to 05:00: 1.0; other hours outside the working day: 0.6; daytime on a day off: 0.4) divided
--   by one plus the earlier days the person was active within an hour of it (23:00 is within an
--   hour of 00:00; for daytime on a day off: the earlier days off they were active).
--   The day's score is its highest hour's, times the confidence of the baseline (earlier days /
--   (earlier days + 2)) and the volume (requests off hours / 10, at most 1). Machines (active
--   about round the clock, see proxy_actors) are left out and counted in a note.
-- param: work_start_hour = 8  # working day starts at this local hour
-- param: work_end_hour = 20  # and ends at this one (exclusive)
-- param: baseline_days = 0  # earlier days to compare with (0: all of the lake before the day)
-- param: min_score = 0.5  # lowest score that is a hit
WITH
hist AS (SELECT who, date, hour FROM proxy_hours_history),
cal AS (
  SELECT d.date, h.name AS holiday, date_part('dow', CAST(d.date AS DATE)) AS dow,
         CAST(CAST(d.date AS DATE) AS INT) AS n
  FROM (SELECT DISTINCT date FROM hist) d LEFT JOIN jp_holidays h ON h.date = d.date
),
c AS (SELECT who, date AS day, hour, requests, first_ts, last_ts FROM proxy_hours),
off AS (
  SELECT c.*, cal.holiday, cal.dow, cal.n,
         c.hour < ${work_start_hour} OR c.hour >= ${work_end_hour} AS outside,
         CASE WHEN c.hour < 5 OR c.hour >= 23 THEN 1.0
              WHEN c.hour < ${work_start_hour} OR c.hour >= ${work_end_hour} THEN 0.6
              ELSE 0.4 END AS depth
  FROM c JOIN cal ON cal.date = c.day
  WHERE (cal.holiday IS NOT NULL OR cal.dow IN (0, 6)
         OR c.hour < ${work_start_hour} OR c.hour >= ${work_end_hour})
    AND c.who NOT IN (SELECT who FROM proxy_actors WHERE machine)
),
base AS (
  SELECT o.who, o.day, o.hour,
         count(DISTINCT h.date) AS prior_days,
         count(DISTINCT CASE WHEN least(abs(h.hour - o.hour), 24 - abs(h.hour - o.hour)) <= 1 THEN h.date END) AS prior_near,
         count(DISTINCT CASE WHEN hc.holiday IS NOT NULL OR hc.dow IN (0, 6) THEN h.date END) AS prior_offdays,
         min(h.date) AS since, max(h.date) AS until
  FROM off o
  LEFT JOIN hist h ON h.who = o.who AND h.date < o.day
  LEFT JOIN cal hc ON hc.date = h.date
  WHERE h.date IS NULL OR ${baseline_days} = 0 OR hc.n >= o.n - ${baseline_days}
  GROUP BY 1, 2, 3
),
scored AS (
  SELECT o.*, b.prior_days, b.since, b.until,
         CASE WHEN o.outside THEN b.prior_near ELSE b.prior_offdays END AS prior_same,
         o.depth / (1 + CASE WHEN o.outside THEN b.prior_near ELSE b.prior_offdays END) AS hour_score
  FROM off o JOIN base b ON b.who = o.who AND b.day = o.day AND b.hour = o.hour
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY who, day ORDER BY hour_score DESC, requests DESC, hour) AS r,
         sum(requests) OVER (PARTITION BY who, day) AS day_requests,
         min(first_ts) OVER (PARTITION BY who, day) AS day_first,
         max(last_ts) OVER (PARTITION BY who, day) AS day_last
  FROM scored
)
SELECT
  who,
  day,
  round(hour_score * prior_days / (prior_days + 2.0) * least(1.0, day_requests / 10.0), 3) AS score,
  CASE WHEN holiday IS NOT NULL THEN 'holiday ' || holiday
       WHEN dow = 0 THEN 'Sunday' WHEN dow = 6 THEN 'Saturday' ELSE 'weekday' END
    || ': ' || day_requests || ' requests off hours, ' || to_char(local_ts(day_first), '%H:%M')
    || '-' || to_char(local_ts(day_last), '%H:%M') || '; '
    || CASE WHEN outside THEN 'active near ' || lpad(CAST(hour AS VARCHAR), 2, '0') || ':00 on '
            ELSE 'active on days off on ' END
    || prior_same || ' of ' || prior_days || ' earlier days'
    || CASE WHEN prior_days > 0 THEN ' (' || since || ' to ' || until || ')'
            ELSE ' (none in the lake: no baseline)' END AS why,
  day_requests AS requests,
  local_ts(day_first) AS first_seen,
  local_ts(day_last) AS last_seen
FROM ranked
WHERE r = 1
ORDER BY score DESC, who, day
-- @notes
SELECT count(*) || ' machine(s) active about round the clock left out: '
       || array_to_string(array_sort(array_agg(who)), ' ') AS note
FROM proxy_actors WHERE machine AND who IN (SELECT who FROM proxy_hours)
HAVING count(*) > 0

-- wrk script: POST new events, each with its own event_id, cycling through a mix of types.
-- wrk -s bench/post_events.lua -H "Authorization: Bearer KEY" http://127.0.0.1:8765
local threads = {}
local bodies = {
  '{"event_id":"%s","event_type":"oeo.start","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"jobseeker","id":"131052-308T","home_municipality":"244"},"attributes":{}}',
  '{"event_id":"%s","event_type":"eu_job_search","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"jobseeker","id":"010594Y9032","home_municipality":"564"},"attributes":{}}',
  '{"event_id":"%s","event_type":"integration.eligibility","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"jobseeker","id":"x-42","home_municipality":"139"},"attributes":{"integration_plan_entitled":true,"integration_period_exceeded":false,"needs_integration_services":true}}',
  '{"event_id":"%s","event_type":"labour_policy_statement","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"jobseeker","id":"131052-308T","home_municipality":"425"},"attributes":{"requires_special_expertise":true}}',
  '{"event_id":"%s","event_type":"employer.advice","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"employer","id":"0112038-9","home_municipality":"564"},"attributes":{"channel":"phone","topic":"training"}}',
}
local counter = 0
statuses = {}

function setup(thread)
  thread:set("prefix", "wrk" .. #threads .. "-" .. os.time())
  table.insert(threads, thread)
end

function init(args)
  -- Headers passed to wrk.format would replace those of -H (the key): add to them instead.
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(bodies[(counter % #bodies) + 1], prefix .. "-" .. counter)
  return wrk.format("POST", "/v1/events", nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- wrk script for the ceiling endpoint: the same bodies as post_events.lua, to /bench/ceiling.
local counter = 0
local prefix = "ceil"
function setup(thread) thread:set("prefix", "ceil" .. tostring(thread) .. os.time()) end
function init(args) wrk.headers["Content-Type"] = "application/json" end
function request()
  counter = counter + 1
  local body = string.format('{"event_id":"%s-%d","event_type":"oeo.start","occurred_at":"2025-03-03T09:15:00+02:00","customer":{"type":"jobseeker","id":"131052-308T","home_municipality":"244"},"attributes":{}}', prefix, counter)
  return wrk.format("POST", "/bench/ceiling", nil, body)
end

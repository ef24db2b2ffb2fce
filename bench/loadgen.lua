-- wrk script for bench/hub.py: one request pattern per run, chosen by environment variables.
--
--   BENCH_MODE    patch | get | query | batch
--   BENCH_N       number of entities to pick ids from (uniformly at random)
--   BENCH_TYPE    entity type in ids (urn:ngsi-ld:<TYPE>:<i, zero-padded to BENCH_WIDTH>)
--   BENCH_WIDTH   digits in the id's number
--   BENCH_BATCH   entities per /entityOperations/update request (batch mode)
--   BENCH_QUERY   path and query string of the filtered query (query mode)
--
-- done() prints one line "BENCHJSON {...}" that bench/hub.py parses.

local mode = os.getenv("BENCH_MODE") or "get"
local n = tonumber(os.getenv("BENCH_N") or "1000")
local etype = os.getenv("BENCH_TYPE") or "Vehicle"
local width = tonumber(os.getenv("BENCH_WIDTH") or "7")
local batch = tonumber(os.getenv("BENCH_BATCH") or "100")
local query = os.getenv("BENCH_QUERY") or "/ngsi-ld/v1/entities?type=Car&limit=10"
local base = "/ngsi-ld/v1"
local idfmt = "urn:ngsi-ld:" .. etype .. ":%0" .. width .. "d"
local json = { ["Content-Type"] = "application/json" }

local function rid()
  return string.format(idfmt, math.random(0, n - 1))
end

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  if mode == "patch" then
    local body = string.format('{"speed":{"type":"Property","value":%.2f}}', math.random() * 100)
    return wrk.format("PATCH", base .. "/entities/" .. rid() .. "/attrs", json, body)
  elseif mode == "batch" then
    local parts = {}
    local seen = {}
    local k = 0
    while k < batch do
      local id = rid()
      if not seen[id] or batch >= n then
        seen[id] = true
        k = k + 1
        parts[k] = string.format('{"id":"%s","speed":{"type":"Property","value":%.2f}}',
                                 id, math.random() * 100)
      end
    end
    return wrk.format("POST", base .. "/entityOperations/update", json,
                      "[" .. table.concat(parts, ",") .. "]")
  elseif mode == "query" then
    return wrk.format("GET", query)
  else
    return wrk.format("GET", base .. "/entities/" .. rid())
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"connect_err":%d,"read_err":%d,' ..
    '"write_err":%d,"status_err":%d,"timeout_err":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(95)),
    math.floor(latency:percentile(99))))
end

-- Reporting hooks appended to every generated wrk script (see bench/wrk.py).
--
-- Each wrk thread counts response statuses in its own Lua state (response hook);
-- done() gathers them through thread:get() and prints one line
--   BENCH_JSON {...}
-- with wrk's summary, socket errors, status counts and the latency distribution
-- (microseconds), which bench/wrk.py parses.

local bench_threads = {}

function setup(thread)
  table.insert(bench_threads, thread)
end

bench_statuses = {}

function response(status, headers, body)
  bench_statuses[status] = (bench_statuses[status] or 0) + 1
end

local function bench_json(v)
  local t = type(v)
  if t == "table" then
    local parts, is_array = {}, #v > 0
    if is_array then
      for _, x in ipairs(v) do table.insert(parts, bench_json(x)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do
      table.insert(parts, string.format("%q", tostring(k)) .. ":" .. bench_json(x))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.3f", v)
  elseif t == "string" then
    return string.format("%q", v)
  elseif t == "boolean" then
    return tostring(v)
  end
  return "null"
end

function done(summary, latency, requests)
  local statuses = {}
  for _, thread in ipairs(bench_threads) do
    local counts = thread:get("bench_statuses") or {}
    for status, n in pairs(counts) do
      local key = tostring(status)
      statuses[key] = (statuses[key] or 0) + n
    end
  end
  local percentiles = {}
  for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
    percentiles[tostring(p)] = latency:percentile(p)
  end
  io.write("BENCH_JSON ", bench_json({
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = {
      connect = summary.errors.connect,
      read = summary.errors.read,
      write = summary.errors.write,
      timeout = summary.errors.timeout,
      status = summary.errors.status,
    },
    statuses = statuses,
    latency_us = {
      min = latency.min,
      max = latency.max,
      mean = latency.mean,
      stdev = latency.stdev,
      percentiles = percentiles,
    },
  }), "\n")
end

-- wrk script for scripts/bench-http: POSTs the request bodies of a file
-- (one JSON body per line) in rotation, optionally paced (a delay in ms
-- per request and connection, for a fixed offered rate), and prints a
-- one-line JSON summary ("JSON {...}") that the script parses. A line
-- "@N HEX" is a body in the binary tensor data extension: HEX is its bytes,
-- the first N of them the JSON header (Inference-Header-Content-Length).
--
--   wrk -s rotate.lua URL -- BODIES_FILE [DELAY_MS]
local bodies = {}
local header_lengths = {}
local pause = 0
local index = 0

local function unhex(hex)
  return (hex:gsub("..", function(byte)
    return string.char(tonumber(byte, 16))
  end))
end

function init(args)
  for line in io.lines(args[1]) do
    local length, hex = line:match("^@(%d+) (%x+)$")
    if length then
      bodies[#bodies + 1] = unhex(hex)
      header_lengths[#bodies] = length
    else
      bodies[#bodies + 1] = line
    end
  end
  if args[2] then pause = tonumber(args[2]) end
  index = math.random(#bodies)
end

function delay()
  return pause
end

function request()
  index = index % #bodies + 1
  local length = header_lengths[index]
  if length then
    return wrk.format("POST", nil, {
      ["Content-Type"] = "application/octet-stream",
      ["Inference-Header-Content-Length"] = length}, bodies[index])
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
                    bodies[index])
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.status +
                 summary.errors.timeout
  io.write(string.format(
    'JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, ' ..
    '"p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "errors": %d, ' ..
    '"non_2xx": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, errors,
    summary.errors.status))
end

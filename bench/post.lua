-- wrk script for pysandboxd: POST /execute with a JSON body, and a summary line.
--
-- The body comes from the file named by BENCH_BODY_FILE or, failing that, from
-- the BENCH_BODY variable. wrk runs this file once per thread (plus once for
-- setup/done), so every thread reads the same body.
--
-- done() prints one machine-parsable line:
--   BENCH requests=N duration_s=S rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D
--         non2xx=E connect=F read=G write=H timeout=I bad_body=J
-- non2xx is wrk's summary.errors.status (wrk counts every status > 399 there);
-- connect/read/write/timeout are wrk's socket errors; bad_body counts responses
-- whose status was 2xx but whose body lacks a "result" key.

local function read_body()
  local path = os.getenv("BENCH_BODY_FILE")
  if path and path ~= "" then
    local file = assert(io.open(path, "rb"))
    local body = file:read("*a")
    file:close()
    return body
  end
  local body = os.getenv("BENCH_BODY")
  assert(body and body ~= "", "set BENCH_BODY_FILE or BENCH_BODY")
  return body
end

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/execute"
wrk.headers["Content-Type"] = "application/json"
wrk.body = read_body()

-- Per-thread counter, summed in done() through the thread handles kept by setup().
bad_body = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status >= 200 and status < 300 and not string.find(body or "", '"result"', 1, true) then
    bad_body = bad_body + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (tonumber(thread:get("bad_body")) or 0)
  end
  local seconds = summary.duration / 1e6
  local function ms(us) return us / 1000.0 end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "non2xx=%d connect=%d read=%d write=%d timeout=%d bad_body=%d\n",
    summary.requests, seconds, seconds > 0 and summary.requests / seconds or 0,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency.max), e.status, e.connect, e.read, e.write, e.timeout, bad))
end

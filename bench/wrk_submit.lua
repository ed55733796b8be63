-- POSTs one fixed request (path, body, headers from the environment) until STOP_AFTER_S seconds
-- have passed, then only GET /healthz, so no submission is in flight when wrk stops.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } mt_timespec;
int clock_gettime(int clk, mt_timespec *tp);
]]
local ts = ffi.new("mt_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local threads = {}
function setup(thread) table.insert(threads, thread) end

local post, probe, stop_after
-- Globals, so that done() can read each thread's counts with thread:get.
accepted, refused, first, last = 0, 0, nil, nil
local posting = true
function init(args)
  local body = os.getenv("WRK_BODY")
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = os.getenv("WRK_AUTH")}
  post = wrk.format("POST", os.getenv("WRK_PATH"), headers, body)
  probe = wrk.format("GET", "/healthz")
  stop_after = tonumber(os.getenv("WRK_STOP_AFTER_S"))
end
function request()
  if posting then
    local t = now()
    if first == nil then first = t end
    if t - first < stop_after then return post end
    posting = false
  end
  return probe
end
function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
    last = now()
  elseif status ~= 200 then
    refused = refused + 1
  end
end
function done(summary, latency, requests)
  local a, r, t0, t1 = 0, 0, nil, nil
  for _, thread in ipairs(threads) do
    a = a + thread:get("accepted")
    r = r + thread:get("refused")
    local f, l = thread:get("first"), thread:get("last")
    if f and (t0 == nil or f < t0) then t0 = f end
    if l and (t1 == nil or l > t1) then t1 = l end
  end
  io.write(string.format("WRK accepted=%d refused=%d seconds=%.6f errors=%d p50_us=%d p99_us=%d\n",
    a, r, (t1 or 0) - (t0 or 0), summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end

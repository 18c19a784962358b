-- wrk script for bench/ingest.sh: every request posts the EMQX 5.0.9 seed report with a
-- new random node and cluster uuid (so every report is a first report: an insert), and
-- with its version, OS and counters drawn from small realistic sets, so that the rollups
-- see many counters. Built from fixed pieces per request: a few string concatenations,
-- little CPU next to the server's work. At the end, one machine-readable line:
--   requests=N non2xx=N errors=N seconds=S p50_ms=X p99_ms=Y max_ms=Z

local versions = { "5.0.9", "5.1.6", "5.3.2", "5.4.1", "5.5.0", "5.6.1", "5.7.2", "5.8.0" }
local systems = {
  { "Ubuntu", "22.04" }, { "Ubuntu", "20.04" }, { "Debian GNU/Linux", "12" },
  { "CentOS Linux", "7" }, { "Amazon Linux", "2023" }, { "macOS", "14.2" },
  { "Alpine Linux", "3.19" },
}

local threads = {}
local counter = 0

-- Each wrk thread runs its own Lua state: give each its own random sequence.
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function hex16()
  return string.format("%04X", math.random(0, 0xFFFF))
end

local function uuid()
  return hex16() .. hex16() .. "-" .. hex16() .. "-" .. hex16() .. "-" .. hex16() .. "-"
    .. hex16() .. hex16() .. hex16()
end

local function peers()
  local list = {}
  for i = 1, math.random(0, 3) do
    list[i] = '"' .. uuid() .. '"'
  end
  return table.concat(list, ",")
end

function request()
  local system = systems[math.random(#systems)]
  local body = '{"emqx_version":"' .. versions[math.random(#versions)]
    .. '","license":{"edition":"opensource"},"os_name":"' .. system[1]
    .. '","os_version":"' .. system[2]
    .. '","otp_version":"24","up_time":' .. math.random(1000, 2000000000)
    .. ',"uuid":"' .. uuid() .. '","cluster_uuid":"' .. uuid()
    .. '","nodes_uuid":[' .. peers() .. '],"active_plugins":[],"num_clients":'
    .. math.random(0, 200000) .. ',"messages_received":' .. math.random(0, 2000000000)
    .. ',"messages_sent":' .. math.random(0, 2000000000)
    .. ',"build_info":{"wordsize":64,"relform":"tgz","os":"macos11","erlang":"24.2.1-1",'
    .. '"elixir":"none","arch":"x86_64-apple-darwin20.6.0"},'
    .. '"vm_specs":{"num_cpus":' .. (2 ^ math.random(0, 6)) .. ',"total_memory":8589934592},'
    .. '"mqtt_runtime_insights":{"num_topics":' .. math.random(0, 50000)
    .. ',"messages_sent_rate":' .. math.random(0, 10000)
    .. ',"messages_received_rate":' .. math.random(0, 10000) .. '},'
    .. '"advanced_mqtt_features":{"topic_rewrite":0,"retained":3,"delayed":0,"auto_subscribe":0},'
    .. '"authn_authz":{"authz":["file"],"authn_listener":{},"authn":[]},"gateway":{},'
    .. '"rule_engine":{"num_rules":1},"bridge":{"num_data_bridges":1,"data_bridge":'
    .. '{"webhook":{"num_linked_by_rules":1,"num":1}}},"exhook":{"servers":[],"num_servers":0}}'
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    "requests=%d non2xx=%d errors=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.errors.status, errors, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end

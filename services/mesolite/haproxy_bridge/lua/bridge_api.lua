-- marathon-lb's stats-port endpoints (/_haproxy_getconfig, /_haproxy_getpids, /_haproxy_getvhostmap,
-- /_haproxy_getappmap, /_mlb_signal/hup, /_mlb_signal/usr1), answered by the mesolite HAProxy bridge.
--
-- marathon-lb answers them with Lua that reads files and runs pidof/pkill; the bridge knows the configuration, the
-- routing and its own HAProxy's processes better, so this service only relays the request to the bridge's HTTP API
-- (its URL is the transaction variable txn.mesolite_bridge_api, set by the stats section). It runs as an applet
-- inside "listen stats", where a use_backend could not win over "stats uri /".

local function header(headers, name)
  local value = headers and headers[name]
  if type(value) == "table" then
    return value[0] or value[1]
  end
  return value
end

core.register_service("mesolite_bridge_api", "http", function(applet)
  local base = applet:get_var("txn.mesolite_bridge_api")
  local status, body, content_type = 502, "the haproxy bridge is not configured\n", "text/plain"
  if base ~= nil then
    local client = core.httpclient()
    local request = {url = base .. applet.path, timeout = 10000}
    local response
    if applet.method == "POST" then
      response = client:post(request)
    else
      response = client:get(request)
    end
    if response ~= nil and response.status ~= nil and response.status > 0 then
      status, body = response.status, response.body or ""
      content_type = header(response.headers, "content-type") or content_type
    else
      body = "the haproxy bridge does not answer at " .. base .. "\n"
    end
  end
  applet:set_status(status)
  applet:add_header("content-type", content_type)
  applet:add_header("content-length", string.len(body))
  applet:start_response()
  applet:send(body)
end)

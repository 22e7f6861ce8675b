-- The mixed workload at a fixed offered load: each connection waits 20 ms after an answer
-- before its next request, so every server gets the same request rate (at most
-- connections x 50 req/s) and the same number of slow requests per second. Closed-loop
-- (mixed.lua), a faster server is sent more slow requests per second, and its p99 pays for
-- its speed; here p99 compares the servers' handling of the same load.
local n = 0
request = function()
        n = n + 1
        if n % 200 == 0 then
                return wrk.format(nil, "/slow")
        end
        return wrk.format(nil, "/")
end

delay = function()
        return 20
end

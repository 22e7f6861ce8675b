-- Hello, with one request in 200 to /slow (50 ms in the app): p99 then shows whether fast
-- requests wait behind slow ones in a busy worker while another worker is idle.
local n = 0
request = function()
        n = n + 1
        if n % 200 == 0 then
                return wrk.format(nil, "/slow")
        end
        return wrk.format(nil, "/")
end

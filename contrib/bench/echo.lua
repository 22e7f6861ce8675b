-- POST of a 4 KiB JSON object to /echo (the FastAPI app parses it and sends it back).
local items = {}
local body = ""
local i = 0
while true do
        items[#items + 1] = string.format(
                '{"id":%d,"name":"item-%03d","price":%d.25,"tags":["bench","asgi"],"in_stock":%s}',
                i, i, i, i % 3 ~= 0 and "true" or "false")
        local candidate = '{"items":[' .. table.concat(items, ",") .. '],"note":""}'
        if #candidate > 4000 then
                items[#items] = nil
                break
        end
        i = i + 1
end
body = '{"items":[' .. table.concat(items, ",") .. '],"note":""}'
-- Pad the note so that the body is exactly 4,096 bytes.
body = '{"items":[' .. table.concat(items, ",") .. '],"note":"' ..
       string.rep("n", 4096 - #body) .. '"}'
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

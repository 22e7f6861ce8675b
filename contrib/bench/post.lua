-- POST of a 16 KiB body to /upload; the app reads it fully.
wrk.method = "POST"
wrk.body = string.rep("x", 16384)
wrk.headers["Content-Type"] = "application/octet-stream"

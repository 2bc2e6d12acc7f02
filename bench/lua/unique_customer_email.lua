-- request(): every checkout creation for a new customer, so the customer upsert inserts
-- (as for a real new buyer) and no request can meet 409 already_subscribed.
-- The static body (also sent once by the preflight) carries BENCH_EMAIL; each request
-- replaces it with an address unique to this wrk run, thread and request.
-- wrk gives every thread its own Lua state: a table's address tells threads apart, the
-- clock tells runs apart.
local bench_email_prefix = string.format(
  "c%x%x%s", os.time(), math.floor(os.clock() * 1e6), string.sub(tostring({}), -8)
)
local bench_email_counter = 0

function request()
  bench_email_counter = bench_email_counter + 1
  local email = bench_email_prefix .. "-" .. bench_email_counter .. "@example.com"
  local body = string.gsub(wrk.body, "bench%-customer@example%.com", email)
  return wrk.format(nil, nil, nil, body)
end

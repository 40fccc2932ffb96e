-- Mixed portal workload for wrk, driven by benchmarks/mock_vs_hello.py.
--
-- The mix, per 100 requests (slots of a fixed shuffled cycle, so the shares are exact):
--
--   sso             14  real single sign-on logins, 3-4 requests each, the next step first:
--                       GET /oauth2/authorize, POST /oauth2/login, POST /oauth2/otp (every
--                       citizen n with n % 5 == 0), POST /oauth2/token (PKCE, auth code grant)
--                       => about 4.4 authorize, 4.4 login, 0.9 otp, 4.4 token
--   me               6  GET /api/v1/me, with a token obtained by a login of this mix when one is ready
--   catalog_list    22  GET /api/v1/services?category=&q=&page=  (a set of popular queries)
--   catalog_detail  20  GET /api/v1/services/{code}              (any of the 550 services)
--   app_submit       6  POST /api/v1/applications                (a valid address-change form)
--   app_status      10  GET /api/v1/applications/{id}            (an application of this run)
--   charges          8  GET /api/v1/payments/charges             (first for freshly logged-in citizens)
--   pay              6  POST /api/v1/payments                    (unique Idempotency-Key each)
--   pay_status       8  GET /api/v1/payments/{id}                 (a payment of this run)
--
-- Journeys are chained through what the responses say, since wrk does not tell which
-- connection a response belongs to: an authorize answer queues its login challenge, a login
-- answer queues its MFA token or its code (the PKCE verifier is found from `state`), a token
-- answer names its citizen in the JWT's `cid` claim, that citizen's charges are listed, every
-- outstanding charge is paid exactly once, and payment ids are followed up. Every charge paid
-- belongs to a citizen who logged in during this run, so no charge is paid twice (no 409).
-- Until the pipeline has produced something, a slot falls back (pay -> charges, status reads ->
-- catalog_detail); the counts printed at the end are what was actually sent.
--
-- PORTAL_MIX_KIND=readonly sends only the reads of the mix, in the same proportions (me 8.1%,
-- catalog_list 29.7%, catalog_detail 27.0%, app_status 13.5%, charges 10.8%, pay_status 10.8%),
-- following the applications and payments the setup phase made: no login, no write.
--
-- Input (environment): PORTAL_MIX_THREADS, wrk's -t (citizens are split between threads);
-- PORTAL_MIX_KIND, portal (default) or readonly;
-- PORTAL_MIX_DATA, a Lua file written by the benchmark that returns
-- { tokens = {{n=, tok=}, ...}, verifiers = {{v=, c=}, ...}, services = {"10001", ...},
--   address_services = {...}, apps = {{id=, tok=}, ...}, pays = {{id=, tok=}, ...},
--   first_citizen = N }.
-- Output: lines "portal_mix <what> <key> <count>" printed by done().

local bit = require("bit")

local data = dofile(os.getenv("PORTAL_MIX_DATA"))

local MIXES = {
  portal = {
    { "sso", 14 },
    { "me", 6 },
    { "catalog_list", 22 },
    { "catalog_detail", 20 },
    { "app_submit", 6 },
    { "app_status", 10 },
    { "charges", 8 },
    { "pay", 6 },
    { "pay_status", 8 },
  },
  -- The reads of the portal mix alone, in the same proportions: no login, no write.
  readonly = {
    { "me", 6 },
    { "catalog_list", 22 },
    { "catalog_detail", 20 },
    { "app_status", 10 },
    { "charges", 8 },
    { "pay_status", 8 },
  },
}
local MIX = MIXES[os.getenv("PORTAL_MIX_KIND") or "portal"]
if MIX == nil then error("PORTAL_MIX_KIND must be portal or readonly") end

local REDIRECT = "http%3A%2F%2Flocalhost%2Fcallback"
local RING = 4096     -- logged-in citizens kept for reads
local FOLLOW = 1024   -- recent applications and payments kept for status reads
local JSON = { ["Content-Type"] = "application/json" }

-- Per-thread state (each wrk thread has its own Lua state) --------------------------------

local schedule = {}
local slot = 0
counts = {}       -- requests sent per kind (read by done())
classes = {}      -- responses per status class
problems = {}     -- non-2xx responses per "status slug"
last_citizen = 0

local tid, nthreads = 0, 1
local next_citizen = 0
local seq = 0

local function queue() return { head = 1, tail = 0 } end
local function push(q, v) q.tail = q.tail + 1; q[q.tail] = v end
local function pop(q)
  if q.head > q.tail then return nil end
  local v = q[q.head]; q[q.head] = nil; q.head = q.head + 1
  return v
end

local challenges, mfa_tokens, codes = queue(), queue(), queue()
local needs_charges, payable = queue(), queue()

local ring_n, ring_tok, ring_len, ring_pos = {}, {}, 0, 0
local by_n = {}  -- citizen -> { tok = , charged = }

local apps, apps_len, apps_pos = {}, 0, 0
local pays, pays_len, pays_pos = {}, 0, 0

local function remember(n, tok, charged)
  ring_pos = ring_pos % RING + 1
  local old = ring_n[ring_pos]
  if old ~= nil then by_n[old] = nil end
  ring_n[ring_pos], ring_tok[ring_pos] = n, tok
  if ring_len < RING then ring_len = ring_len + 1 end
  by_n[n] = { tok = tok, charged = charged }
end

local function follow(list, len, pos, item)
  pos = pos % FOLLOW + 1
  list[pos] = item
  if len < FOLLOW then len = len + 1 end
  return len, pos
end

local function any_citizen()
  local i = math.random(ring_len)
  return ring_n[i], ring_tok[i]
end

local function bearer(tok, extra)
  local h = { Authorization = "Bearer " .. tok }
  if extra then for k, v in pairs(extra) do h[k] = v end end
  return h
end

local B64 = {}
do
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  for i = 1, 64 do B64[alphabet:byte(i)] = i - 1 end
end

local function b64url_decode(s)
  local out, acc, nbits = {}, 0, 0
  for i = 1, #s do
    local v = B64[s:byte(i)]
    if v == nil then return nil end
    acc = bit.bor(bit.lshift(acc, 6), v)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char(bit.band(bit.rshift(acc, nbits), 0xFF))
      acc = bit.band(acc, bit.lshift(1, nbits) - 1)
    end
  end
  return table.concat(out)
end

-- wrk hooks -------------------------------------------------------------------------------

local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  tid = tonumber(wrk.thread:get("thread_index")) or 0
  nthreads = tonumber(os.getenv("PORTAL_MIX_THREADS") or "1")
  math.randomseed(1000 + tid)
  for _, entry in ipairs(MIX) do
    if entry[1] ~= "sso" then counts[entry[1]] = 0 end
    for _ = 1, entry[2] do schedule[#schedule + 1] = entry[1] end
  end
  for i = #schedule, 2, -1 do  -- a fixed shuffle: the same cycle in every run
    local j = math.random(i)
    schedule[i], schedule[j] = schedule[j], schedule[i]
  end
  for _, kind in ipairs({ "authorize", "login", "otp", "token" }) do counts[kind] = 0 end
  next_citizen = data.first_citizen + tid
  for i, t in ipairs(data.tokens) do
    if (i - 1) % nthreads == tid then remember(t.n, t.tok, true) end
  end
  -- Applications and payments made by the setup phase, so status reads start at once.
  for _, a in ipairs(data.apps or {}) do
    apps_len, apps_pos = follow(apps, apps_len, apps_pos, { a.id, a.tok })
  end
  for _, p in ipairs(data.pays or {}) do
    pays_len, pays_pos = follow(pays, pays_len, pays_pos, { p.id, p.tok })
  end
end

local function sso()
  local mfa = pop(mfa_tokens)
  if mfa then
    counts.otp = counts.otp + 1
    return wrk.format("POST", "/oauth2/otp", JSON,
      '{"mfa_token":"' .. mfa .. '","code":"000000"}')
  end
  local code = pop(codes)
  if code then
    counts.token = counts.token + 1
    return wrk.format("POST", "/oauth2/token",
      { ["Content-Type"] = "application/x-www-form-urlencoded" },
      "grant_type=authorization_code&code=" .. code[1] .. "&redirect_uri=" .. REDIRECT
        .. "&client_id=portal-web&code_verifier=" .. data.verifiers[code[2]].v)
  end
  local challenge = pop(challenges)
  if challenge then
    counts.login = counts.login + 1
    local n = next_citizen
    next_citizen = next_citizen + nthreads
    last_citizen = n
    return wrk.format("POST", "/oauth2/login", JSON,
      '{"login_challenge":"' .. challenge .. '","login":"citizen-' .. n
        .. '","password":"Passw0rd-' .. n .. '"}')
  end
  counts.authorize = counts.authorize + 1
  seq = seq + 1
  local v = seq % #data.verifiers + 1
  return wrk.format("GET", "/oauth2/authorize?response_type=code&client_id=portal-web"
    .. "&redirect_uri=" .. REDIRECT .. "&scope=openid%20profile%20applications%20payments"
    .. "&state=s" .. v .. "-" .. seq .. "&code_challenge=" .. data.verifiers[v].c
    .. "&code_challenge_method=S256")
end

local CATEGORIES = { "", "passports", "vehicles", "taxes", "benefits", "fines", "registry" }
local QUERIES = { "", "", "", "passport", "tax", "vehicle", "fine", "benefit" }

local function catalog_list()
  local q = QUERIES[math.random(#QUERIES)]
  local path = "/api/v1/services?page=" .. math.random(3)
  if q ~= "" then path = path .. "&q=" .. q
  else
    local c = CATEGORIES[math.random(#CATEGORIES)]
    if c ~= "" then path = path .. "&category=" .. c end
  end
  return wrk.format("GET", path)
end

local function catalog_detail()
  counts.catalog_detail = counts.catalog_detail + 1
  return wrk.format("GET", "/api/v1/services/" .. data.services[math.random(#data.services)])
end

local function charges_of(n, tok)
  counts.charges = counts.charges + 1
  return wrk.format("GET", "/api/v1/payments/charges", bearer(tok))
end

local function charges()
  local n = pop(needs_charges)
  local entry = n and by_n[n]
  if entry then return charges_of(n, entry.tok) end
  return charges_of(any_citizen())
end

function request()
  slot = slot % #schedule + 1
  local kind = schedule[slot]
  if kind == "sso" then return sso() end
  if kind == "catalog_detail" then return catalog_detail() end
  if kind == "charges" then return charges() end
  if kind == "pay" then
    local p = pop(payable)
    if p == nil then return charges() end
    counts.pay = counts.pay + 1
    seq = seq + 1
    return wrk.format("POST", "/api/v1/payments",
      bearer(p[2], { ["Content-Type"] = "application/json",
                     ["Idempotency-Key"] = "bench-" .. tid .. "-" .. seq .. "-" .. p[1] }),
      '{"charge_id":"' .. p[3] .. '","method":"card"}')
  end
  if kind == "pay_status" then
    if pays_len == 0 then return catalog_detail() end
    local p = pays[math.random(pays_len)]
    counts.pay_status = counts.pay_status + 1
    return wrk.format("GET", "/api/v1/payments/" .. p[1], bearer(p[2]))
  end
  if kind == "app_status" then
    if apps_len == 0 then return catalog_detail() end
    local a = apps[math.random(apps_len)]
    counts.app_status = counts.app_status + 1
    return wrk.format("GET", "/api/v1/applications/" .. a[1], bearer(a[2]))
  end
  counts[kind] = counts[kind] + 1
  if kind == "catalog_list" then return catalog_list() end
  local n, tok = any_citizen()
  if kind == "me" then return wrk.format("GET", "/api/v1/me", bearer(tok)) end
  -- app_submit: the address names the citizen, so the answer can be followed up with its token
  local code = data.address_services[math.random(#data.address_services)]
  return wrk.format("POST", "/api/v1/applications", bearer(tok, JSON),
    '{"service_code":"' .. code .. '","fields":{"applicant_snils":"112-233-445 95",'
      .. '"contact_phone":"+79161234567","address":"Lenina street 1, apt ' .. n .. '",'
      .. '"move_in_date":"2026-05-17","residents":' .. (n % 4 + 1) .. '}}')
end

local function on_token(body)
  local tok = body:match('^{"access_token":"([^"]+)"')
  if tok == nil then return end
  local payload = tok:match("^[^.]+%.([^.]+)%.")
  local claims = payload and b64url_decode(payload)
  local n = claims and tonumber(claims:match('"cid":(%d+)'))
  if n == nil then return end
  remember(n, tok, false)
  push(needs_charges, n)
end

local function on_charges(body)
  local n = tonumber(body:match('^{"items":%[{"id":"CH%-(%d+)%-'))
  local entry = n and by_n[n]
  if entry == nil or entry.charged then return end
  entry.charged = true  -- each charge of a citizen is queued for payment exactly once
  for id in body:gmatch('"id":"(CH%-%d+%-%d)"') do push(payable, { n, entry.tok, id }) end
end

function response(status, headers, body)
  local class = math.floor(status / 100) .. "xx"
  classes[class] = (classes[class] or 0) + 1
  if status == 200 then
    local head = body:sub(1, 12)
    if head == '{"items":[{"' then
      if body:sub(13, 17) == 'id":"' then on_charges(body) end
    elseif head == '{"login_chal' then
      push(challenges, body:match('^{"login_challenge":"([^"]+)"'))
    elseif head == '{"access_tok' then
      on_token(body)
    elseif head == '{"mfa_requir' then
      push(mfa_tokens, body:match('"mfa_token":"([^"]+)"'))
    end
  elseif status == 302 then
    local location = headers["Location"] or ""
    local code = location:match("[?&]code=([^&]+)")
    local v = tonumber(location:match("[?&]state=s(%d+)%-"))
    if code and v then push(codes, { code, v }) end
  elseif status == 201 then
    local key = headers["Idempotency-Key"]
    if key then
      local n = tonumber(key:match("%-(%d+)$"))
      local entry = n and by_n[n]
      local pid = body:match('^{"id":"(PAY%-%x+)"')
      if entry and pid then pays_len, pays_pos = follow(pays, pays_len, pays_pos, { pid, entry.tok }) end
    else
      local id = body:match('^{"id":"(APP%-%x+)"')
      local n = tonumber(body:match('"address":"Lenina street 1, apt (%d+)"'))
      local entry = n and by_n[n]
      if id and entry then apps_len, apps_pos = follow(apps, apps_len, apps_pos, { id, entry.tok }) end
    end
  elseif status >= 400 then
    local slug = body:match('"type":"[^"]*/([%w%-]+)"') or "?"
    local key = status .. " " .. slug
    problems[key] = (problems[key] or 0) + 1
  end
end

local function report(what, tbl)
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    io.write(string.format("portal_mix %s %s %d\n", what, string.gsub(k, " ", "_"), tbl[k]))
  end
end

function done(summary, latency, requests)
  local sum_counts, sum_classes, sum_problems = {}, {}, {}
  local last = 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts") or {}) do sum_counts[k] = (sum_counts[k] or 0) + v end
    for k, v in pairs(t:get("classes") or {}) do sum_classes[k] = (sum_classes[k] or 0) + v end
    for k, v in pairs(t:get("problems") or {}) do sum_problems[k] = (sum_problems[k] or 0) + v end
    last = math.max(last, tonumber(t:get("last_citizen")) or 0)
  end
  report("sent", sum_counts)
  report("status", sum_classes)
  report("problem", sum_problems)
  io.write(string.format("portal_mix citizens last %d\n", last))
end

-- Argo CD health for meshkeeper's kinds (config.openservicemesh.io/MeshConfig,
-- policy.openservicemesh.io/Egress and IngressBackend), following kstatus:
-- Healthy = Current, Progressing = InProgress (or terminating), Degraded = Failed.
-- One script serves every kind; what only some kinds write is used when it is there:
-- - status.currentStatus (IngressBackend, kept from OSM) is quoted before the message.
-- - A PodsInSync=False condition (MeshConfig) leaves the object Healthy, as kstatus does: the
--   configuration is accepted and served, pods pick it up only when they restart, and a Degraded
--   here would fail every sync that changes an exclusion. The message says which pods lag.
local hs = { status = "Progressing", message = "Waiting for meshkeeper to reconcile this generation" }
if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  hs.message = "Being deleted"
  return hs
end
local st = obj.status
if st == nil then
  return hs
end
local generation = obj.metadata.generation
if generation ~= nil and st.observedGeneration ~= nil and st.observedGeneration ~= generation then
  return hs
end
local ready = nil
local pods = nil
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    if c.type == "Reconciling" and c.status == "True" then
      hs.message = c.message or c.reason or hs.message
      return hs
    end
    if c.type == "Stalled" and c.status == "True" then
      hs.status = "Degraded"
      hs.message = (c.reason or "Stalled") .. ": " .. (c.message or "")
      return hs
    end
    if c.type == "Ready" then
      ready = c
    end
    if c.type == "PodsInSync" then
      pods = c
    end
  end
end
if ready == nil or ready.status == "True" then
  hs.status = "Healthy"
  hs.message = (ready ~= nil and ready.message) or "Reconciled"
  if st.currentStatus ~= nil then
    hs.message = st.currentStatus .. ": " .. hs.message
  end
  if pods ~= nil and pods.status == "False" then
    hs.message = hs.message .. "; pods not in sync (" .. (pods.reason or "") .. "): " .. (pods.message or "")
  end
  if st.findings ~= nil and #st.findings > 0 then
    hs.message = hs.message .. " (" .. #st.findings .. " finding(s), first: " .. st.findings[1].code .. ")"
  end
  return hs
end
hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or "")
return hs

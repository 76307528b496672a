"""The Cloud Foundry landscape: which IAS certificates the identity bindings and service keys
really hold (read through the CF v3 API by ``cf_sync``), and where that drifts from the portal."""

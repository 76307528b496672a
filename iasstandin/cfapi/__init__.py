"""A local stand-in for a Cloud Foundry API (Cloud Controller v3, read-only) and its UAA.

It lives beside the IAS stand-in because it is one of the BTP services the portal talks to (the
package name ``iasstandin`` is older than this part). Like the IAS stand-in it shares no code
with the portal: it serves the root document, the UAA token endpoint (password grant with the
cf CLI's client ``cf``, client credentials), the v3 collections the landscape scan reads with
their filters, ``include`` and pagination, a binding's ``/details``, and ``/v3/apps/:guid``, over
a world of orgs, spaces, apps, service instances and bindings from a JSON document.
"""

from .standin import Call, CloudFoundry, Faults
from .world import World, stable_guid

__all__ = ["Call", "CloudFoundry", "Faults", "World", "stable_guid"]

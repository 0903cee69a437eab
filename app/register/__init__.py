"""What storing a decision also records: the customership register and the units' worklist items.

Below the decision log (app/decisions/store.py calls `record_routing` in the writer's batch) and
above persistence; the services that read and answer worklists are app/worklists/.
"""

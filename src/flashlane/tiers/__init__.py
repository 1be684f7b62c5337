"""Service tiers in runs: batch jobs (``batch``) and their records in the run store (``jobs``).

Flex needs no module here: it is a field on each request (``flashlane.tier``)."""

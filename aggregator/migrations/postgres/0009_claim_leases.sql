-- Battles whose lease has run out, found without reading every running battle: the claim
-- looks here first, then takes pending battles oldest first from battles_claimable.
CREATE INDEX battles_leases ON battles (lease_until_ms) WHERE status = 'RUNNING';

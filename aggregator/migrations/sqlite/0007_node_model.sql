-- The model a node's engine runs (its registration says it), so agreement can be read per
-- backend and model.
ALTER TABLE nodes ADD COLUMN model TEXT;
